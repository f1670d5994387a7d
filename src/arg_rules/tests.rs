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
    let out = conditions(&values, &set);
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
    let set = allowed(&[(Abi::X86_64, "prctl"), (Abi::X86_64, "clone")]);
    let out = conditions(&ArgValues::new(), &set);
    assert_eq!(out["prctl"], Allowed::Plain(Plain::Unrecorded(Abi::X86_64)));
    let Allowed::With(clone) = &out["clone"] else { panic!("{out:?}") };
    assert_eq!(clone.len(), 1);
    assert_eq!((clone[0].value, clone[0].value_two), (CLONE_NAMESPACES, 0));
}

#[test]
fn a_lost_value_or_too_many_values_fall_back_to_the_name() {
    let set = allowed(&[(Abi::X86_64, "socket"), (Abi::X86_64, "personality")]);
    let many: Vec<u64> = (0..=MAX_VALUES as u64).collect();
    let values = kept(&[(Abi::X86_64, "socket", &[1], true), (Abi::X86_64, "personality", &many, false)]);
    let out = conditions(&values, &set);
    assert_eq!(out["socket"], Allowed::Plain(Plain::Lost(Abi::X86_64)));
    assert_eq!(out["personality"], Allowed::Plain(Plain::TooMany));
    let at_bound = kept(&[(Abi::X86_64, "personality", &many[..MAX_VALUES], false)]);
    let Allowed::With(rules) = &conditions(&at_bound, &set)["personality"] else { panic!() };
    assert_eq!(rules.len(), MAX_VALUES);
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
