//! What the numbers were measured on, printed with them: the same figures
//! on another kernel or a quieter machine can differ a lot.

use std::process::Command;

#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub kernel: String,
    pub cpu: String,
    pub nproc: usize,
    pub mem_gib: f64,
    pub tools: Vec<(String, String)>,
    pub commit: String,
    /// CPU vulnerability mitigations that tax every kernel call and
    /// return (retpolines, return thunks), so every BPF helper call; they
    /// explain much of a syscall's and a BPF program's cost on a machine.
    pub mitigations: Vec<(String, String)>,
}

/// Busy and stolen CPU time of the whole machine, from /proc/stat.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTicks {
    busy: u64,
    steal: u64,
    total: u64,
}

impl CpuTicks {
    pub fn now() -> CpuTicks {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let line = stat.lines().next().unwrap_or_default();
        // cpu user nice system idle iowait irq softirq steal ...
        let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        let at = |i: usize| f.get(i).copied().unwrap_or(0);
        let total: u64 = f.iter().take(8).sum();
        CpuTicks { busy: total - at(3) - at(4) - at(7), steal: at(7), total }
    }

    /// (busy %, stolen %) of all CPUs between `self` and `later`.
    pub fn until(&self, later: &CpuTicks) -> (f64, f64) {
        let total = later.total.saturating_sub(self.total).max(1) as f64;
        let pct = |a: u64, b: u64| 100.0 * a.saturating_sub(b) as f64 / total;
        (pct(later.busy, self.busy), pct(later.steal, self.steal))
    }
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_string))
        .unwrap_or_else(|| "not found".into())
}

pub fn load_average() -> String {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

impl Machine {
    pub fn probe(repo: &std::path::Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let tools = [("podman", "--version"), ("runc", "--version"), ("crun", "--version"), ("strace", "-V")]
            .iter()
            .map(|(t, a)| (t.to_string(), first_line(t, &[a])))
            .collect();
        let mut commit = first_line("git", &["-C", &repo.to_string_lossy(), "rev-parse", "--short", "HEAD"]);
        let dirty = Command::new("git")
            .args(["-C", &repo.to_string_lossy(), "status", "--porcelain", "--untracked-files=no", "--", "src", "bpf"])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false);
        if dirty {
            commit.push_str(" (hook sources modified)");
        }
        let vuln = std::path::Path::new("/sys/devices/system/cpu/vulnerabilities");
        let mitigations = ["spectre_v2", "spec_rstack_overflow", "retbleed"]
            .iter()
            .filter_map(|v| {
                let state = std::fs::read_to_string(vuln.join(v)).ok()?;
                Some((v.to_string(), state.trim().to_string()))
            })
            .collect();
        Machine {
            mitigations,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
            cpu,
            nproc: std::thread::available_parallelism().map(usize::from).unwrap_or(0),
            mem_gib: mem_kib / 1024.0 / 1024.0,
            tools,
            commit,
        }
    }
}
