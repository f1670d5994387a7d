use super::*;

fn watch(name: &str) -> (usize, &'static Watched) {
    WATCHED.iter().enumerate().find(|(_, w)| w.name == name).expect("watched")
}

fn allowed(entries: &[(Abi, &str)]) -> SyscallSet {
    let mut set = SyscallSet::default();
    for &(abi, name) in entries {
        set.insert(abi, watch(name).1.number(abi).expect("the ABI has it"));
    }
    set
}

fn kept(entries: &[(Abi, &str, &[u64], bool)]) -> ArgValues {
    entries
        .iter()
        .map(|&(abi, name, values, lost)| {
            ((abi, watch(name).0), Kept { values: values.iter().copied().collect(), lost })
        })
        .collect()
}

fn eq(value: u64) -> Arg {
    Arg { index: 0, value, value_two: 0, op: CMP_EQ.into() }
}

#[test]
fn each_value_becomes_one_condition_across_abis() {
    let set = allowed(&[(Abi::X86_64, "socket"), (Abi::X86, "socket")]);
    let values = kept(&[(Abi::X86_64, "socket", &[2, 1], false), (Abi::X86, "socket", &[10], false)]);
    let out = conditions(&values, &set, &SyscallSet::default());
    assert_eq!(out["socket"], Allowed::With(vec![eq(1), eq(2), eq(10)]));
    assert_eq!(out.len(), 1, "only allowed names get an entry: {out:?}");
}

#[test]
fn clone_is_masked_to_its_namespace_flags() {
    let (_, clone) = watch("clone");
    assert_eq!(clone.mask(), CLONE_NAMESPACES);
    assert_eq!(CLONE_NAMESPACES & 0xff, 0, "the exit signal's bits are not namespace flags");
    assert_eq!(CLONE_NAMESPACES & 0x1000_0000, 0x1000_0000, "CLONE_NEWUSER");
    let c = clone.condition(0x1000_0000);
    assert_eq!((c.op.as_str(), c.value, c.value_two), (CMP_MASKED_EQ, CLONE_NAMESPACES, 0x1000_0000));
}

#[test]
fn an_allowance_without_values_is_plain_but_clone_assumes_a_thread() {
    let granted = allowed(&[(Abi::X86_64, "prctl"), (Abi::X86_64, "clone")]);
    let own = allowed(&[(Abi::X86_64, "prctl"), (Abi::X86_64, "clone")]);
    let values = kept(&[(Abi::X86_64, "prctl", &[16], false), (Abi::X86_64, "clone", &[0x1000_0000], false)]);
    let out = conditions(&values, &own, &granted);
    assert_eq!(out["prctl"], Allowed::Plain(Plain::Unrecorded(Abi::X86_64)), "its own value is not enough");
    let Allowed::With(clone) = &out["clone"] else { panic!("{out:?}") };
    let masked: Vec<u64> = clone.iter().map(|c| c.value_two).collect();
    assert_eq!(masked, [0, 0x1000_0000], "a thread, and the recorded namespace");
    let only_granted = conditions(&ArgValues::new(), &SyscallSet::default(), &granted);
    assert_eq!(only_granted["clone"], Allowed::With(vec![watch("clone").1.condition(0)]));
}

#[test]
fn a_lost_value_or_too_many_values_fall_back_to_the_name() {
    let set = allowed(&[(Abi::X86_64, "socket"), (Abi::X86_64, "personality")]);
    let many: Vec<u64> = (0..=MAX_VALUES as u64).collect();
    let values = kept(&[(Abi::X86_64, "socket", &[1], true), (Abi::X86_64, "personality", &many, false)]);
    let out = conditions(&values, &set, &SyscallSet::default());
    assert_eq!(out["socket"], Allowed::Plain(Plain::Lost(Abi::X86_64)));
    assert_eq!(out["personality"], Allowed::Plain(Plain::TooMany));
    let at_bound = kept(&[(Abi::X86_64, "personality", &many[..MAX_VALUES], false)]);
    let Allowed::With(rules) = &conditions(&at_bound, &set, &SyscallSet::default())["personality"] else { panic!() };
    assert_eq!(rules.len(), MAX_VALUES);
    let none_kept = conditions(&ArgValues::new(), &set, &SyscallSet::default());
    assert_eq!(none_kept["personality"], Allowed::Plain(Plain::NotKept(Abi::X86_64)), "a call without a value");
}

/// Every watched name has a number on the native ABI, i386 socket has its
/// direct number (not libseccomp's socketcall pseudo number), and the
/// watches fit the recorder's slots.
#[test]
fn every_watch_resolves_to_a_recorder_number() {
    for w in WATCHED {
        assert!(w.number(Abi::X86_64).is_some(), "{}", w.name);
        assert!(w.number(Abi::X86).is_some(), "{} under i386", w.name);
        assert!(w.arg <= 5);
    }
    assert_eq!(watch("socket").1.number(Abi::X86), Some(359));
    assert_eq!(watch("socket").1.number(Abi::X86_64), Some(41));
}
