//! Reading another process's CPU time and memory, and the kernel's UDP drop counter, from
//! Linux's /proc. Elsewhere these answer `None` and the summary leaves them out.

/// Linux reports CPU time in clock ticks of 1/100 s on every architecture perfwatch targets.
pub const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU ticks of `pid`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM:")
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field)?.split_whitespace().next()?.parse().ok())
}

/// Datagrams the kernel dropped on UDP sockets bound to `port` (its receive buffer was full).
pub fn udp_drops(port: u16) -> Option<u64> {
    let mut total = None;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port =
                fields.get(1).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                let drops: u64 = fields.last()?.parse().ok()?;
                *total.get_or_insert(0) += drops;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        // RSS first: the peak read after it covers it (the other way round, a thread allocating
        // in between made the later RSS exceed the earlier peak).
        let rss = rss_kib(pid).unwrap();
        assert!(rss > 0);
        assert!(peak_rss_kib(pid).unwrap() >= rss);
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(udp_drops(socket.local_addr().unwrap().port()), Some(0));
    }
}
