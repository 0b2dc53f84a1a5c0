//! CPU time the generator process used, so a report can say how much of the shared machine the
//! generator took from the server under test.

use std::time::Duration;

/// User + system CPU time of this process (all threads) so far; `None` where `/proc` is absent.
pub fn process_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&stat)
}

/// Fields 14 and 15 (utime, stime) of `/proc/<pid>/stat`, in clock ticks of 1/100 s (the value
/// of `CLK_TCK` on every Linux platform herald runs on).
fn parse_stat(stat: &str) -> Option<Duration> {
    // The command name (field 2) may contain spaces and parentheses; fields resume after the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// User + system CPU time of process `pid` and all its descendants (a server that forks
/// workers, like Kamailio); `None` when `pid` is gone.
pub fn tree_time(pid: u32) -> Option<Duration> {
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(p) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        if let (Some(ppid), Some(time)) = (parse_ppid(&stat), parse_stat(&stat)) {
            procs.push((p, ppid, time));
        }
    }
    if !procs.iter().any(|(p, _, _)| *p == pid) {
        return None;
    }
    let mut tree = vec![pid];
    let mut total = Duration::ZERO;
    let mut i = 0;
    while let Some(&parent) = tree.get(i) {
        i += 1;
        for (p, ppid, time) in &procs {
            if *p == parent {
                total += *time;
            }
            if *ppid == parent && *p != parent {
                tree.push(*p);
            }
        }
    }
    Some(total)
}

/// Field 4 of `/proc/<pid>/stat`, the parent's pid.
fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_after_the_command_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(parse_stat(stat), Some(Duration::from_secs(3)));
        assert_eq!(parse_stat("garbage"), None);
        assert!(process_time().is_some());
        assert_eq!(parse_ppid(stat), Some(1));
        assert!(tree_time(std::process::id()).is_some());
        assert_eq!(tree_time(u32::MAX), None);
    }
}
