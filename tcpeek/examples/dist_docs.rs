//! Writes tcpeek's and tcpeekstat's man pages and shell completions under
//! the directory given (`cargo xtask dist` runs it).

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "target/dist".into());
    for f in tcpeek::cli::docs::write_all(&dir)? {
        println!("{}", f.display());
    }
    Ok(())
}
