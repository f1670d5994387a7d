//! Running one command on several kernels, several VMs at a time.

use std::path::Path;
use std::sync::Mutex;

use crate::fetch::Kernel;
use crate::guest::Job;
use crate::report::{Row, Verdict};
use crate::vm::{self, VmOptions, VmReport};

/// How many VMs to run at once. Memory: each VM may touch all of its `-m` plus QEMU's own
/// overhead, and we leave a quarter of the available memory to the host. CPU: with 1-vCPU guests
/// one more VM than cores keeps every core busy while another VM waits on I/O (three 1-CPU VMs on
/// two cores measured 118 s -> 82 s against one at a time); more only stretches each VM's time.
pub fn jobs_for(kernels: usize, available_mib: u64, cores: usize, vm_mib: u32) -> usize {
    let per_vm = u64::from(vm_mib) + 256;
    let by_memory = (available_mib * 3 / 4 / per_vm) as usize;
    kernels.min(by_memory).min(cores + 1).max(1)
}

/// [`jobs_for`] with this host's MemAvailable and core count.
pub fn default_jobs(kernels: usize, vm_mib: u32) -> usize {
    let available_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(4096, |kib| kib / 1024);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    jobs_for(kernels, available_mib, cores, vm_mib)
}

/// Runs `job` on every kernel, `jobs` at a time; reports come back in the kernels' order.
pub fn run(kernels: &[Kernel], job: &Job, opts: &VmOptions, out_root: &Path, jobs: usize) -> Vec<VmReport> {
    let next = Mutex::new(0usize);
    let reports: Mutex<Vec<Option<VmReport>>> = Mutex::new(kernels.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let index = {
                    let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
                    let index = *next;
                    *next += 1;
                    index
                };
                let Some(kernel) = kernels.get(index) else { break };
                eprintln!("vm-harness: {} ({}): booting", kernel.series, kernel.version);
                let report = vm::run(kernel, job, opts, out_root, None);
                let row = Row::from_report(&report);
                let result = match &row.verdict {
                    Verdict::Pass => "pass".to_owned(),
                    Verdict::Fail => "FAIL".to_owned(),
                    Verdict::Infra(reason) => format!("INFRA: {reason}"),
                };
                eprintln!(
                    "vm-harness: {} ({}): {result} in {:.1}s",
                    kernel.series,
                    kernel.version,
                    report.wall.as_secs_f64()
                );
                reports.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(report);
            });
        }
    });
    reports.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_table() {
        // (kernels, available MiB, cores, VM MiB) -> jobs
        let cases = [
            ((5, 23_000, 2, 2048), 3),  // this machine: CPU-bound
            ((2, 23_000, 2, 2048), 2),  // fewer kernels than slots
            ((5, 6_000, 8, 2048), 1),   // memory-bound
            ((5, 1_000, 2, 2048), 1),   // never zero
            ((5, 64_000, 16, 2048), 5), // big host: all at once
        ];
        for ((kernels, available, cores, vm), expected) in cases {
            assert_eq!(jobs_for(kernels, available, cores, vm), expected, "{kernels} {available} {cores} {vm}");
        }
    }
}
