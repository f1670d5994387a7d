//! Bounds on what the hook accepts and echoes.
//!
//! runc reads a hook's stderr only after the hook exits, and a pipe holds
//! 64 KiB: a hook that writes more blocks forever, and so does the
//! container's start. Every input we echo is therefore cut short, and
//! inputs that no honest caller sends are refused before they are echoed.

/// How many characters of an input an error message shows.
pub const SHOWN_CHARS: usize = 200;
/// The longest annotation value accepted (real ones are under 200 bytes):
/// room for two paths of PATH_MAX.
pub const MAX_ANNOTATION_BYTES: usize = 8192 + 16;
/// Linux's PATH_MAX, terminating NUL included.
pub const PATH_MAX: usize = libc::PATH_MAX as usize;
/// The largest baseline profile read (real ones are under 100 KB).
pub const MAX_INPUT_BYTES: u64 = 8 * 1024 * 1024;
/// The longest message the hook passes on to the runtime: well under the
/// 64 KiB a pipe holds.
pub const MAX_MESSAGE_BYTES: usize = 8192;

/// `text` as an error message may show it: whole when short, else its first
/// SHOWN_CHARS characters and its full length. Debug-quoted, so control
/// characters show as escapes and cannot rewrite the user's terminal.
pub fn shown(text: &str) -> String {
    cut(text, SHOWN_CHARS)
}

/// Like [`shown`], with room for a whole message.
pub fn shown_message(text: &str) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text.to_string();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... (message cut, {} bytes in all)", &text[..end], text.len())
}

fn cut(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}... ({} bytes in all)", &text[..end], text.len()),
    }
}

/// The first control character of `text` (NUL included), if any. Tabs count
/// as blanks: a hand-written annotation may hold one.
pub fn control_char(text: &str) -> Option<char> {
    text.chars().find(|c| c.is_control() && *c != '\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_shown_whole() {
        assert_eq!(shown("of:/a"), "\"of:/a\"");
    }

    #[test]
    fn long_text_is_cut_and_its_length_stated() {
        let long = "x".repeat(100_000);
        let s = shown(&long);
        assert!(s.len() < SHOWN_CHARS + 50, "{}", s.len());
        assert!(s.ends_with("... (100000 bytes in all)"), "{s}");
    }

    #[test]
    fn cut_respects_multibyte_characters() {
        let long = "é".repeat(1000);
        assert!(shown(&long).contains("(2000 bytes in all)"));
        let message = "é".repeat(MAX_MESSAGE_BYTES);
        let m = shown_message(&message);
        assert!(m.len() < MAX_MESSAGE_BYTES + 60 && m.contains("message cut"), "{}", m.len());
    }

    #[test]
    fn control_characters_are_found() {
        assert_eq!(control_char("of:/a\0b"), Some('\0'));
        assert_eq!(control_char("of:/a\nb"), Some('\n'));
        assert_eq!(control_char("of:/a\u{1b}[2J"), Some('\u{1b}'));
        assert_eq!(control_char("of:\t/a"), None);
    }
}
