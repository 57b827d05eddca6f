//! One finished handshake as a table line (the original's layout) or as a
//! JSON object.

use chrono::{DateTime, Local, SecondsFormat, Utc};
use serde::Serialize;

use crate::engine::{Finished, Outcome};

/// The table header, as the original prints it.
pub const HEADER: &str = concat!(
    "\n TIME(s) |       TIMESTAMP       |      SRC IP:PORT            DST IP:PORT     |      RESULTS      | DUP SYN  DUP S/A\n",
    "----------------------------------------------------------------------------------------------------------------------\n",
);

/// The RESULTS column, 17 characters wide.
fn result_column(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "     success     ",
        Outcome::Timeout => "failure (timeout)",
        Outcome::Reject => "failure (reject) ",
        Outcome::Aborted => "failure (aborted)",
        Outcome::Unreach => "failure (unreach)",
    }
}

/// The short result name used in JSON.
pub fn result_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Timeout => "timeout",
        Outcome::Reject | Outcome::Aborted => "reject",
        Outcome::Unreach => "unreach",
    }
}

/// Who sent the RST that ended a handshake.
pub fn reset_by(o: Outcome) -> Option<&'static str> {
    match o {
        Outcome::Reject => Some("server"),
        Outcome::Aborted => Some("client"),
        _ => None,
    }
}

fn local_time(ns: u64) -> DateTime<Local> {
    DateTime::<Utc>::from_timestamp_nanos(ns.min(i64::MAX as u64) as i64).with_timezone(&Local)
}

/// `%4d.%03d | %y-%m-%d %T.%03d | %15s:%-5u %15s:%-5u | RESULT | %7u  %7u`
/// (IPv6 addresses widen their columns).
pub fn format_line(f: &Finished) -> String {
    let ms = f.duration_ns() / 1_000_000;
    format!(
        "{:4}.{:03} | {} | {:>15}:{:<5} {:>15}:{:<5} | {} | {:7}  {:7}",
        ms / 1000,
        ms % 1000,
        local_time(f.start_ns).format("%y-%m-%d %H:%M:%S%.3f"),
        f.conn.client.addr.to_string(),
        f.conn.client.port,
        f.conn.server.addr.to_string(),
        f.conn.server.port,
        result_column(f.outcome),
        f.dupsyn,
        f.dupsynack,
    )
}

#[derive(Serialize)]
struct JsonSession<'a> {
    start: String,
    duration: f64,
    src: String,
    sport: u16,
    dst: String,
    dport: u16,
    result: &'static str,
    /// `server` or `client` for a reset; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    reset_by: Option<&'static str>,
    dupsyn: u32,
    dupsynack: u32,
    /// Seconds from the first SYN to the server's acknowledgement of it;
    /// absent if the server never answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    syn_to_synack: Option<f64>,
    /// Seconds from that to the completing ACK; successes only.
    #[serde(skip_serializing_if = "Option::is_none")]
    synack_to_ack: Option<f64>,
    filters: &'a [&'a str],
    /// Community ID v1 of the connection (seed 0), as Zeek and Suricata
    /// write it.
    community_id: String,
}

/// The Community ID v1 (seed 0) of a TCP connection: the same string
/// whichever side it is computed from.
pub fn community_id(f: &Finished) -> String {
    let (c, s) = (&f.conn.client, &f.conn.server);
    // Both ends are of one family and ports are given: it cannot fail.
    community_id::calculate_community_id(
        0,
        c.addr.ip(),
        s.addr.ip(),
        Some(c.port),
        Some(s.port),
        6,
        false,
    )
    .unwrap_or_default()
}

/// One finished handshake as a single-line JSON object.
pub fn json_line(f: &Finished, filters: &[&str]) -> String {
    let start = DateTime::<Utc>::from_timestamp_nanos(f.start_ns.min(i64::MAX as u64) as i64);
    let phases = f.phases_ns();
    serde_json::to_string(&JsonSession {
        start: start.to_rfc3339_opts(SecondsFormat::Micros, true),
        duration: f.duration_ns() as f64 / 1e9,
        src: f.conn.client.addr.to_string(),
        sport: f.conn.client.port,
        dst: f.conn.server.addr.to_string(),
        dport: f.conn.server.port,
        result: result_name(f.outcome),
        reset_by: reset_by(f.outcome),
        dupsyn: f.dupsyn,
        dupsynack: f.dupsynack,
        syn_to_synack: phases.map(|(a, _)| a as f64 / 1e9),
        synack_to_ack: phases
            .filter(|_| f.outcome == Outcome::Success)
            .map(|(_, b)| b as f64 / 1e9),
        filters,
        community_id: community_id(f),
    })
    .expect("session serializes")
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::event::{Addr, Connection, Endpoint};

    fn finished(client: &str, server: &str, outcome: Outcome) -> Finished {
        let ep = |s: &str, p| Endpoint::new(Addr::from(s.parse::<IpAddr>().unwrap()), p);
        Finished {
            conn: Connection {
                client: ep(client, 48967),
                server: ep(server, 80),
            },
            outcome,
            start_ns: 1_767_225_600_123_000_000,
            end_ns: 1_767_225_600_123_000_000 + 39_947_000_000,
            dupsyn: 2,
            dupsynack: 0,
            tag: 0,
            iface: 0,
            synack_ns: Some(1_767_225_600_123_000_000 + 39_000_000_000),
            icmp_code: None,
        }
    }

    #[test]
    fn table_line_has_the_originals_columns() {
        let line = format_line(&finished(
            "192.168.2.227",
            "192.168.2.207",
            Outcome::Timeout,
        ));
        let (time, rest) = line.split_once(" | ").unwrap();
        assert_eq!(time, "  39.947");
        let cols: Vec<&str> = rest.split(" | ").collect();
        assert_eq!(cols.len(), 4, "{line}");
        assert_eq!(cols[0].len(), "12-07-06 16:39:02.552".len());
        assert!(cols[0].ends_with(".123"), "{line}");
        assert_eq!(cols[1], "  192.168.2.227:48967   192.168.2.207:80   ");
        assert_eq!(cols[2], "failure (timeout)");
        assert_eq!(cols[3], "      2        0");
    }

    #[test]
    fn ipv6_widens_the_address_columns() {
        let line = format_line(&finished(
            "2001:db8::1234:5678:9abc",
            "2001:db8::1",
            Outcome::Success,
        ));
        assert!(
            line.contains(
                "2001:db8::1234:5678:9abc:48967     2001:db8::1:80    |      success      |"
            ),
            "{line}"
        );
    }

    #[test]
    fn client_resets_say_who_reset() {
        let f = finished("10.0.0.2", "10.0.0.1", Outcome::Aborted);
        assert!(format_line(&f).contains("| failure (aborted) |"));
        let v: serde_json::Value = serde_json::from_str(&json_line(&f, &[])).unwrap();
        assert_eq!(v["result"], "reject", "the socket's category, for scripts");
        assert_eq!(v["reset_by"], "client");
        let ok = finished("10.0.0.2", "10.0.0.1", Outcome::Success);
        let v: serde_json::Value = serde_json::from_str(&json_line(&ok, &[])).unwrap();
        assert!(v.get("reset_by").is_none());
    }

    #[test]
    fn json_line_carries_everything() {
        let v: serde_json::Value = serde_json::from_str(&json_line(
            &finished("10.0.0.2", "10.0.0.1", Outcome::Reject),
            &["RX", "web"],
        ))
        .unwrap();
        assert_eq!(v["start"], "2026-01-01T00:00:00.123000Z");
        assert_eq!(v["duration"], 39.947);
        assert_eq!(v["src"], "10.0.0.2");
        assert_eq!(v["dport"], 80);
        assert_eq!(v["result"], "reject");
        assert_eq!(v["reset_by"], "server");
        assert_eq!(v["dupsyn"], 2);
        assert_eq!(v["filters"], serde_json::json!(["RX", "web"]));
        assert_eq!(v["syn_to_synack"], 39.0);
        assert!(v.get("synack_to_ack").is_none(), "a reset has no ACK phase");
    }

    #[test]
    fn community_id_is_the_specifications() {
        // The Community ID specification's baseline (tcp.pcap of
        // corelight/community-id-spec): 128.232.110.120:34855 ->
        // 66.35.250.204:80, seed 0.
        let mut f = finished("128.232.110.120", "66.35.250.204", Outcome::Success);
        f.conn.client.port = 34855;
        assert_eq!(community_id(&f), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        let v: serde_json::Value = serde_json::from_str(&json_line(&f, &[])).unwrap();
        assert_eq!(v["community_id"], "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        // The same from the other side.
        std::mem::swap(&mut f.conn.client, &mut f.conn.server);
        assert_eq!(community_id(&f), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    }

    #[test]
    fn json_line_splits_a_success_into_its_phases() {
        let ok = finished("10.0.0.2", "10.0.0.1", Outcome::Success);
        let v: serde_json::Value = serde_json::from_str(&json_line(&ok, &[])).unwrap();
        assert_eq!(
            (v["syn_to_synack"].as_f64(), v["synack_to_ack"].as_f64()),
            (Some(39.0), Some(0.947))
        );
        let unanswered = Finished {
            synack_ns: None,
            ..finished("10.0.0.2", "10.0.0.1", Outcome::Timeout)
        };
        let v: serde_json::Value = serde_json::from_str(&json_line(&unanswered, &[])).unwrap();
        assert!(v.get("syn_to_synack").is_none() && v.get("synack_to_ack").is_none());
    }
}
