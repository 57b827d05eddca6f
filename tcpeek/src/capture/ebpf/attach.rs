//! Attaching the programs: TCX links, the netlink fallback (a `clsact`
//! qdisc and filters, removed by a guard), XDP.

use super::*;

pub(super) fn attach_xdp(ebpf: &mut Ebpf, iface: &str) -> Result<(), EbpfError> {
    let program = names::PROG_XDP;
    let prog: &mut Xdp = program_mut(ebpf, iface, program)?;
    prog.load().map_err(|source| EbpfError::LoadProgram {
        iface: iface.to_owned(),
        program,
        source: Box::new(source),
    })?;
    // Default mode: the driver's native XDP if it has one, else generic.
    prog.attach(iface, XdpMode::Default)
        .map_err(|source| EbpfError::Attach {
            iface: iface.to_owned(),
            program,
            hook: "XDP",
            hint: " (XDP links need Linux >= 5.9; another XDP program may be attached)",
            source: Box::new(source),
        })?;
    Ok(())
}

pub(super) fn program_mut<'a, P>(
    ebpf: &'a mut Ebpf,
    iface: &str,
    program: &'static str,
) -> Result<&'a mut P, EbpfError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let prog = ebpf.program_mut(program).ok_or(EbpfError::Object {
        what: "program",
        name: program,
    })?;
    prog.try_into().map_err(|source| EbpfError::LoadProgram {
        iface: iface.to_owned(),
        program,
        source: Box::new(source),
    })
}

pub(super) fn attach_tc(
    ebpf: &mut Ebpf,
    iface: &str,
    ifindex: u32,
    program: &'static str,
    attach_type: TcAttachType,
    mode: TcMode,
    qdisc: &mut Option<ClsactGuard>,
) -> Result<(), EbpfError> {
    let hook = if attach_type == TcAttachType::Ingress {
        "TC ingress"
    } else {
        "TC egress"
    };
    let prog: &mut SchedClassifier = program_mut(ebpf, iface, program)?;
    prog.load().map_err(|source| EbpfError::LoadProgram {
        iface: iface.to_owned(),
        program,
        source: Box::new(source),
    })?;
    let attach_err = |source, hint| EbpfError::Attach {
        iface: iface.to_owned(),
        program,
        hook,
        hint,
        source: Box::new(source),
    };

    if mode != TcMode::Netlink {
        // Ingress first: see packets as they arrived, before other programs
        // (a firewall, a NAT) drop or rewrite them. Egress last: see them as
        // they leave, after such programs.
        let order = if attach_type == TcAttachType::Ingress {
            LinkOrder::first()
        } else {
            LinkOrder::last()
        };
        match prog.attach_with_options(iface, attach_type, TcAttachOptions::TcxOrder(order)) {
            Ok(_) => return Ok(()),
            Err(e) if mode == TcMode::Tcx => {
                return Err(attach_err(e, " (TCX needs Linux >= 6.6)"))
            }
            Err(_) => {} // No TCX: fall back to netlink.
        }
    }

    if qdisc.is_none() {
        // Ok: we added it (and remove it on drop). Err: it was already
        // there (EEXIST) or cannot be (then attaching fails, with a reason).
        if tc::qdisc_add_clsact(iface).is_ok() {
            *qdisc = Some(ClsactGuard {
                iface: iface.to_owned(),
                ifindex,
            });
        }
    }
    // A previous tcpeek killed with SIGKILL cannot have removed its filters.
    let _ = tc::qdisc_detach_program(iface, attach_type, program);
    prog.attach_with_options(
        iface,
        attach_type,
        TcAttachOptions::Netlink(NlOptions::default()),
    )
    .map_err(|e| attach_err(e, " (with a clsact qdisc and a netlink filter)"))?;
    Ok(())
}

/// Removes the `clsact` qdisc that this capture added (which also removes
/// every filter on it). aya has no call for deleting a qdisc, so this uses
/// tc(8); it only runs on kernels without TCX.
pub(super) struct ClsactGuard {
    iface: String,
    ifindex: u32,
}

impl Drop for ClsactGuard {
    fn drop(&mut self) {
        // The interface may have been renamed or deleted meanwhile: check
        // that the name still means the same interface.
        if ifindex(&self.iface) != Some(self.ifindex) {
            return;
        }
        let _ = std::process::Command::new("tc")
            .args(["qdisc", "del", "dev", &self.iface, "clsact"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
