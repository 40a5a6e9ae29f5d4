//! Splits a command's output stream into lines as it arrives, for the live view. A line is
//! handed on only once it is whole (its newline came, or the stream ended), so that a secret
//! written in two pieces reaches the masker in one piece. A partial line is held up to
//! [`LINE_CAP`] bytes: past that it is handed on cut (the masker then also masks a trailing
//! beginning of a secret) and the rest of that line is dropped, so no end of a secret can
//! follow on its own.

use serde::{Deserialize, Serialize};

/// Bytes of one line held for the live view; a longer line is cut there.
pub const LINE_CAP: usize = 4096;

/// Which stream of a command a line comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of output, without its line break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    /// The line was longer than [`LINE_CAP`]: this is its beginning, the rest was dropped.
    pub cut: bool,
}

/// Where the lines of one stream go.
pub type OnLine = dyn Fn(Stream, Line) + Send + Sync;

/// Holds the partial line of one stream.
#[derive(Debug, Default)]
pub struct Splitter {
    held: Vec<u8>,
    /// The current line was cut: drop bytes until its newline.
    dropping: bool,
}

impl Splitter {
    /// Takes the bytes of one read; calls `emit` for each line they complete.
    pub fn push(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(Line)) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let (part, rest) = match newline {
                Some(i) => (&bytes[..i], Some(&bytes[i + 1..])),
                None => (bytes, None),
            };
            if !self.dropping {
                let room = LINE_CAP - self.held.len();
                if part.len() > room {
                    self.held.extend_from_slice(&part[..room]);
                    emit(self.take(true));
                    self.dropping = true;
                } else {
                    self.held.extend_from_slice(part);
                }
            }
            match rest {
                Some(rest) => {
                    if !self.dropping {
                        emit(self.take(false));
                    }
                    self.dropping = false;
                    bytes = rest;
                }
                None => break,
            }
        }
    }

    /// The stream ended: a last line without its newline is handed on.
    pub fn finish(&mut self, emit: &mut dyn FnMut(Line)) {
        if !self.held.is_empty() && !self.dropping {
            emit(self.take(false));
        }
        self.held.clear();
        self.dropping = false;
    }

    fn take(&mut self, cut: bool) -> Line {
        let mut bytes = std::mem::take(&mut self.held);
        if bytes.last() == Some(&b'\r') && !cut {
            bytes.pop();
        }
        Line {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            cut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Line> {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut |l| out.push(l));
        }
        s.finish(&mut |l| out.push(l));
        out
    }

    fn line(text: &str) -> Line {
        Line {
            text: text.to_owned(),
            cut: false,
        }
    }

    #[test]
    fn joins_a_line_written_in_pieces() {
        assert_eq!(
            split(&[b"pass", b"word\nnext", b"\r\n", b"last"]),
            vec![line("password"), line("next"), line("last")]
        );
    }

    #[test]
    fn cuts_a_long_line_and_drops_its_rest() {
        let long = vec![b'x'; LINE_CAP + 10];
        let out = split(&[&long, b"yy\nafter\n"]);
        assert_eq!(out.len(), 2);
        assert!(out[0].cut);
        assert_eq!(out[0].text.len(), LINE_CAP);
        assert_eq!(out[1], line("after"));
    }

    #[test]
    fn empty_lines_are_lines() {
        assert_eq!(split(&[b"\n\n"]), vec![line(""), line("")]);
    }
}
