//! The AFL++ harness: `perfwatch-fuzz <target>` runs AFL++'s persistent loop over one target
//! of `targets.rs`. Built and run by `fuzz/run`, which links Debian's AFL++ runtime.

mod targets;

fn main() {
    let Some(target) = std::env::args().nth(1).filter(|t| targets::TARGETS.contains(&t.as_str())) else {
        eprintln!("usage: perfwatch-fuzz <target>; the targets are {:?}", targets::TARGETS);
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| targets::run(&target, data));
}
