//! Man pages (clap_mangen) and shell completions (clap_complete) for
//! `tcpeek` and `tcpeekstat`, generated from their clap definitions so
//! that they can never drift from the flags. `cargo xtask dist` writes
//! them (`tcpeek/examples/dist_docs.rs`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};
use clap_complete::Shell;

use super::{Args, StatArgs};

/// The two commands, as clap describes them.
pub fn commands() -> [Command; 2] {
    [Args::command(), StatArgs::command()]
}

/// Writes `man/man1/NAME.1` (a tree `MANPATH` can name) and
/// `completions/` (bash `NAME`, zsh `_NAME`, fish `NAME.fish`, the file
/// names each shell looks for) under `dir`; returns the files written.
pub fn write_all(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let (man, comp) = (dir.join("man/man1"), dir.join("completions"));
    fs::create_dir_all(&man)?;
    fs::create_dir_all(&comp)?;
    let mut written = Vec::new();
    for mut cmd in commands() {
        let name = cmd.get_name().to_string();
        let page = man.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
        fs::write(&page, out)?;
        written.push(page);
        for (shell, file) in [
            (Shell::Bash, name.clone()),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let path = comp.join(file);
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, name.clone(), &mut out);
            fs::write(&path, out)?;
            written.push(path);
        }
    }
    Ok(written)
}
