# oci-seccomp-bpf-hook: every task, one recipe each. CI runs `just test`.
# Recipes that touch BPF or podman need root (CI is root).

set shell := ["bash", "-euo", "pipefail", "-c"]

export CONTAINERS_CONF := justfile_directory() / "tests/fixtures/containers.conf"

# The precise-profile corpus runs 20 recordings a case on the host and in the userlands, and
# CORPUS_RECORDINGS a case in TCG guests (vm-test-corpus: 3 in CI's gate, 20 in the workflow's
# kernel matrix: 36 min on 7.3, 56 min on 5.10), where vm-test skips it. Minimisation (two
# replays per allowed name) runs on the host and in the userlands (each userland's whole suite:
# about 340 s), not in TCG guests: which calls a program shrugs off is the userland's, not the
# kernel's.
CORPUS_RECORDINGS := env_var_or_default("OCI_HOOK_TEST_RECORDINGS", "3")
NO_MINIMIZE := "--env OCI_HOOK_TEST_MINIMIZE=0"
SLOW_PODMAN := "--env OCI_HOOK_TEST_RECORDINGS=0 " + NO_MINIMIZE

# List the recipes.
default:
    @just --list

# Build the hook (debug).
build:
    cargo build --locked

# Build the hook (release).
build-release:
    cargo build --locked --release

# Apply the host fixes podman needs here and build the fixture image.
fixtures:
    bash tests/fixtures/host-setup.sh
    bash tests/fixtures/images.sh

# Record a fixture container's profile, print it, and replay the container under it.
demo: build-release fixtures
    bash scripts/demo.sh target/release/oci-seccomp-bpf-hook

# The integration test that installs the .deb (tests/integration/packaging.rs).
DEB_TEST := "the_deb_installs"

# Everything CI runs: lint, pure tests, bounded fuzzing, root + podman tests on this kernel and in the newer userlands, VMs on the oldest and newest kernels, the corpus on the oldest, and sid booted with systemd on the newest.
test: lint test-unit fuzz-ci test-host test-userlands (vm-test "5.10" "7.3") (vm-test-corpus "5.10" "7.3") vm-test-systemd

# Pure tests of every workspace crate (hook, vm-harness, bench): any machine, no root.
test-unit:
    cargo test --locked --workspace --lib --bins

# Root tests on the host kernel: the BPF engine (`record`) and podman end to end, runc and crun; then the .deb installed, used and purged, alone (its postrm removes the shared pins only when no other tracer runs).
test-host: fixtures deb
    cargo test --locked --test integration -- --test-threads=2 --skip {{DEB_TEST}}
    OCI_HOOK_TEST_DEB="$(just _deb-path)" cargo test --locked --test integration {{DEB_TEST}} -- --test-threads=1 --nocapture

# The integration suite on Linux kernels under QEMU (all of vm/KERNELS when none given), e.g. `just vm-test 5.10`.
vm-test *KERNELS: fixtures
    bash tests/fixtures/images.sh --save target/fixtures/images.tar
    cargo run --locked --release -p vm-harness -- matrix {{KERNELS}} \
        --image-archive target/fixtures/images.tar --env CONTAINERS_CONF="$CONTAINERS_CONF" {{SLOW_PODMAN}} \
        -- "$(just _integration-bin)" --test-threads=1 --nocapture

# The precise-profile corpus, CORPUS_RECORDINGS a case (3 unless OCI_HOOK_TEST_RECORDINGS says), on Linux kernels under QEMU (all of vm/KERNELS when none given), output in vm/out/corpus. CI's gate runs 5.10 and 7.3 (where the kernel can skip the recorder: README, "Kernels that skip the recorder"; 20 recordings a case passed there, 2134 s); the workflow runs every kernel at 20.
vm-test-corpus *KERNELS: fixtures
    bash tests/fixtures/images.sh --save target/fixtures/images.tar
    cargo run --locked --release -p vm-harness -- --out "{{justfile_directory()}}/vm/out/corpus" matrix {{KERNELS}} \
        --timeout "$(( 900 + 240 * {{CORPUS_RECORDINGS}} ))" \
        --image-archive target/fixtures/images.tar --env CONTAINERS_CONF="$CONTAINERS_CONF" \
        --env OCI_HOOK_TEST_RECORDINGS={{CORPUS_RECORDINGS}} {{NO_MINIMIZE}} \
        -- "$(just _integration-bin)" --test-threads=1 --nocapture precise_profiles

# The integration suite in guests that boot like a distribution (systemd PID 1, cgroup v2, journald, podman's systemd cgroup manager, the .deb installed at boot), USERLAND:SERIES each, e.g. `just vm-test-systemd trixie:6.12`. The .deb test runs in test-host and test-userlands: here the package is already installed.
vm-test-systemd *PAIRS="sid:7.3": fixtures deb
    bash tests/fixtures/images.sh --save target/fixtures/images.tar
    for pair in {{PAIRS}}; do \
        cargo run --locked --release -p vm-harness -- systemd "${pair%%:*}" --kernel "${pair##*:}" \
            --deb "$(just _deb-path)" --image-archive target/fixtures/images.tar {{SLOW_PODMAN}} \
            --env OCI_HOOK_TEST_SYSTEMD_HOST=1 \
            -- "$(just _integration-bin)" --test-threads=1 --nocapture --skip {{DEB_TEST}}; \
    done

# The integration suite on the host kernel in Debian userlands with newer podman, runc and crun (trixie and sid when none given), each a cached mmdebstrap root run as a chroot.
test-userlands *USERLANDS: fixtures deb
    bash tests/fixtures/images.sh --save target/fixtures/images.tar
    cargo run --locked --release -p vm-harness -- userland {{USERLANDS}} \
        --image-archive target/fixtures/images.tar --env CONTAINERS_CONF="$CONTAINERS_CONF" \
        --env OCI_HOOK_TEST_DEB="$(just _deb-path)" \
        --env PODMAN_IGNORE_CGROUPSV1_WARNING=1 -- "$(just _integration-bin)" --test-threads=1 --nocapture

# Builds the integration test binary and prints its path (for runs outside cargo: VMs, userlands).
_integration-bin:
    @cargo test --locked --test integration --no-run --message-format=json \
        | jq -r 'select(.executable != null and .target.name == "integration") | .executable'

# Benchmarks against the targets; writes bench/RESULTS.md.
bench: build-release fixtures
    cargo run --locked --release -p bench -- --out bench/RESULTS.md

# fmt, clippy (warnings are errors) and clang-format for bpf/.
lint:
    cargo fmt --all -- --check
    cargo clippy --locked --workspace --all-targets -- -D warnings
    clang-format --dry-run --Werror bpf/*.c bpf/*.h

# The Debian package target/deb/oci-seccomp-bpf-hook_<version>_<arch>.deb: the release build, hooks.d entry, man page, copyright; Depends from dpkg-shlibdeps (dpkg-dev).
deb: build-release
    bash packaging/deb.sh target/release/oci-seccomp-bpf-hook target/deb

# The path `just deb` writes, absolute (the userland chroots see the repository at its own path).
_deb-path:
    @echo "{{justfile_directory()}}/target/deb/oci-seccomp-bpf-hook_$(target/release/oci-seccomp-bpf-hook --version | cut -d' ' -f2)_$(dpkg --print-architecture).deb"

# Install the binary, the hooks.d entry and the man page under PREFIX (from source; `just deb` for Debian).
install PREFIX="/usr": build-release
    install -D -m 755 target/release/oci-seccomp-bpf-hook "{{PREFIX}}/libexec/oci/hooks.d/oci-seccomp-bpf-hook"
    mkdir -p "{{PREFIX}}/share/containers/oci/hooks.d" "{{PREFIX}}/share/man/man1"
    sed 's|/usr/libexec/oci/hooks.d/|{{PREFIX}}/libexec/oci/hooks.d/|' hooks.d/oci-seccomp-bpf-hook.json \
        > "{{PREFIX}}/share/containers/oci/hooks.d/oci-seccomp-bpf-hook.json"
    target/release/oci-seccomp-bpf-hook man > "{{PREFIX}}/share/man/man1/oci-seccomp-bpf-hook.1"

# Fuzz each target for SECONDS (nightly + cargo-fuzz); new inputs go to target/fuzz/corpus, crashes to tests/fuzz/artifacts.
fuzz SECONDS="1800" *TARGETS="annotation oci_state profile_merge":
    command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    for t in {{TARGETS}}; do \
        mkdir -p "target/fuzz/corpus/$t"; \
        cargo +nightly fuzz run --fuzz-dir tests/fuzz --target-dir target/fuzz "$t" \
            "target/fuzz/corpus/$t" "tests/fuzz/corpus/$t" \
            -- -max_total_time={{SECONDS}} -rss_limit_mb=2048 -print_final_stats=1 > "target/fuzz/$t.log" 2>&1 \
            || { tail -40 "target/fuzz/$t.log"; echo "fuzz target $t failed: see target/fuzz/$t.log"; exit 1; }; \
        echo "$t: $(grep -h '^stat::number_of_executed_units' "target/fuzz/$t.log" | tail -1)"; \
    done

# The bounded fuzz run CI does: 60 s per target.
fuzz-ci: (fuzz "60")

# Load and soak (root, podman): 64 traced containers at once, then 1,000 in sequence; prints the figures.
soak PARALLEL="64" SEQUENCE="1000": build-release fixtures
    bash scripts/soak.sh target/release/oci-seccomp-bpf-hook {{PARALLEL}} {{SEQUENCE}}
