//! What tcpeek says about a capture file: the startup line, worded like
//! tcpdump's, and libpcap's names of link types.

use super::{Layout, State};

impl State {
    /// See [`super::FileCapture::banner`].
    pub(super) fn banner(&self) -> String {
        let file = self.path.display();
        match &self.layout {
            Layout::Classic {
                dlt,
                header_snaplen,
                ..
            } => format!(
                "reading from file {file}, link-type {}, snapshot length {header_snaplen}",
                dlt_name(*dlt)
            ),
            Layout::Ng { interfaces, .. } => match &interfaces[..] {
                [] => format!("reading from file {file}, no interface described yet"),
                [first, rest @ ..]
                    if rest
                        .iter()
                        .all(|i| i.dlt == first.dlt && i.snaplen == first.snaplen) =>
                {
                    format!(
                        "reading from file {file}, link-type {}, snapshot length {}",
                        dlt_name(first.dlt),
                        first.snaplen
                    )
                }
                all => {
                    let each: Vec<String> = all
                        .iter()
                        .enumerate()
                        .map(|(n, i)| {
                            format!(
                                "{n}: link-type {}, snapshot length {}{}",
                                dlt_name(i.dlt),
                                i.snaplen,
                                if i.decoder.is_none() {
                                    " (not decoded)"
                                } else {
                                    ""
                                }
                            )
                        })
                        .collect();
                    format!(
                        "reading from file {file}, {} interfaces: {}",
                        all.len(),
                        each.join("; ")
                    )
                }
            },
        }
    }
}

/// libpcap's name and description of a link type (`pcap_datalink_val_to_name`
/// and `_description`; values from <https://www.tcpdump.org/linktypes.html>),
/// for the common ones.
pub fn dlt_name(dlt: u32) -> String {
    let known = match dlt {
        0 => "NULL (BSD loopback)",
        1 => "EN10MB (Ethernet)",
        6 => "IEEE802 (Token Ring)",
        9 => "PPP (PPP)",
        10 => "FDDI (FDDI)",
        12 | 14 | 101 => "RAW (Raw IP)",
        50 => "PPP_SERIAL (PPP over serial)",
        51 => "PPP_ETHER (PPPoE)",
        104 => "C_HDLC (Cisco HDLC)",
        105 => "IEEE802_11 (802.11)",
        108 => "LOOP (OpenBSD loopback)",
        113 => "LINUX_SLL (Linux cooked v1)",
        117 => "PFLOG (OpenBSD pflog file)",
        119 => "PRISM_HEADER (802.11 plus Prism header)",
        127 => "IEEE802_11_RADIO (802.11 plus radiotap header)",
        143 => "DOCSIS (DOCSIS)",
        192 => "PPI (Per-Packet Information)",
        195 => "IEEE802_15_4_WITHFCS (IEEE 802.15.4 with FCS)",
        197 => "ERF (Extensible Record Format)",
        201 => "BLUETOOTH_HCI_H4_WITH_PHDR (Bluetooth HCI UART transport layer plus pseudo-header)",
        215 => "IEEE802_15_4_NOFCS (IEEE 802.15.4 without FCS)",
        220 => "USB_LINUX_MMAPPED (USB with padded Linux header)",
        227 => "CAN_SOCKETCAN (CAN-bus with SocketCAN headers)",
        228 => "IPV4 (Raw IPv4)",
        229 => "IPV6 (Raw IPv6)",
        239 => "NFLOG (Linux netfilter log messages)",
        249 => "USBPCAP (USB packets, beginning with a USBPcap header)",
        252 => "WIRESHARK_UPPER_PDU (Wireshark Upper PDU export)",
        253 => "NETLINK (Linux netlink)",
        276 => "LINUX_SLL2 (Linux cooked v2)",
        147..=162 => return format!("USER{} (private use)", dlt - 147),
        _ => return format!("LINKTYPE {dlt}, unknown to tcpeek"),
    };
    known.to_owned()
}
