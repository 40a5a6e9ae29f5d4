//! What runbook asks of the run's [`supervisor`](super::supervisor), and how it travels: a
//! length-prefixed message on a Unix stream socket, with the command's standard streams passed
//! alongside as descriptors (`SCM_RIGHTS`), so that the command writes straight into runbook's
//! pipes and nothing is copied on the way.

use std::ffi::OsString;
use std::io::{IoSlice, IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// The largest request taken: far above what `execve` itself accepts (argv and environment
/// together), so that the kernel, not this limit, is what refuses a command that is too long.
const MAX_REQUEST: u32 = 64 * 1024 * 1024;

/// Start a command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spawn {
    /// runbook's name for it in replies.
    pub id: u64,
    /// Where the program is, as the run found it in `PATH` (empty: look it up).
    pub found: OsString,
    /// Its working directory (empty: the supervisor's, which is runbook's).
    pub cwd: OsString,
    /// Variables it does not inherit.
    pub remove: Vec<OsString>,
    /// Variables set for it.
    pub set: Vec<(OsString, OsString)>,
    /// The program, then its arguments.
    pub argv: Vec<OsString>,
}

/// One request.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// Start a command; its standard streams come with the message: output, error, and input
    /// when `reads_input` (else it reads `/dev/null`).
    Spawn { spawn: Spawn, reads_input: bool },
    /// End this command now, with everything it started.
    End { id: u64 },
}

/// A command's standard streams, as they travel with a spawn: output and error, then input
/// when it reads one (else it reads `/dev/null`).
pub struct Streams {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub stdin: Option<OwnedFd>,
}

impl Streams {
    /// The descriptors in the order they are sent.
    pub fn raw(&self) -> Vec<RawFd> {
        let mut fds = vec![self.stdout.as_raw_fd(), self.stderr.as_raw_fd()];
        fds.extend(self.stdin.as_ref().map(AsRawFd::as_raw_fd));
        fds
    }

    /// The streams from the descriptors received with a spawn (`None`: some are missing).
    pub fn received(fds: Vec<OwnedFd>, reads_input: bool) -> Option<Self> {
        let mut fds = fds.into_iter();
        let (stdout, stderr) = (fds.next()?, fds.next()?);
        let stdin = if reads_input { Some(fds.next()?) } else { None };
        Some(Self {
            stdout,
            stderr,
            stdin,
        })
    }
}

/// A request as received, with the descriptors that came with it.
pub struct Received {
    pub request: Request,
    pub fds: Vec<OwnedFd>,
}

const SPAWN: u8 = 1;
const END: u8 = 2;

/// Sends `request` with `fds` (a spawn's output, error and, when it reads one, input).
pub fn send(socket: &UnixStream, request: &Request, fds: &[RawFd]) -> std::io::Result<()> {
    let body = encode(request);
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l <= MAX_REQUEST)
        .ok_or_else(|| std::io::Error::other("the command is too long to start"))?;
    let header = len.to_le_bytes();
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    // One message, header and body together, the descriptors with its first bytes: the
    // supervisor wakes once per request, and never finds the header without its body.
    let iov = [IoSlice::new(&header), IoSlice::new(&body)];
    let sent = loop {
        match sendmsg::<()>(socket.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None) {
            Ok(n) => break n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    };
    // What did not fit in the socket's buffer follows on the stream.
    let mut stream = socket;
    if let Some(header_rest) = header.get(sent..) {
        std::io::Write::write_all(&mut stream, header_rest)?;
    }
    std::io::Write::write_all(&mut stream, &body[sent.saturating_sub(header.len())..])
}

/// Receives one request; `None` at the end of the stream (runbook is gone).
pub fn receive(socket: &UnixStream) -> std::io::Result<Option<Received>> {
    let mut header = [0u8; 4];
    let mut fds = Vec::new();
    let mut got = 0;
    while got < header.len() {
        let mut space = nix::cmsg_space!([RawFd; 3]);
        let mut iov = [IoSliceMut::new(&mut header[got..])];
        let msg = match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let n = msg.bytes;
        for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                // SAFETY: the kernel just installed these descriptors for this process.
                fds.extend(
                    received
                        .into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    let len = u32::from_le_bytes(header);
    if len > MAX_REQUEST {
        return Err(std::io::Error::other("request too long"));
    }
    let mut body = vec![0u8; len as usize];
    (&*socket).read_exact(&mut body)?;
    let request = decode(&body).ok_or_else(|| std::io::Error::other("malformed request"))?;
    Ok(Some(Received { request, fds }))
}

fn encode(request: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    match request {
        Request::End { id } => {
            out.push(END);
            out.extend_from_slice(&id.to_le_bytes());
        }
        Request::Spawn { spawn, reads_input } => {
            out.push(SPAWN);
            out.extend_from_slice(&spawn.id.to_le_bytes());
            out.push(u8::from(*reads_input));
            put(&mut out, &spawn.found);
            put(&mut out, &spawn.cwd);
            put_count(&mut out, spawn.remove.len());
            for name in &spawn.remove {
                put(&mut out, name);
            }
            put_count(&mut out, spawn.set.len());
            for (k, v) in &spawn.set {
                put(&mut out, k);
                put(&mut out, v);
            }
            put_count(&mut out, spawn.argv.len());
            for arg in &spawn.argv {
                put(&mut out, arg);
            }
        }
    }
    out
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

fn put(out: &mut Vec<u8>, s: &OsString) {
    put_count(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Reads what [`encode`] wrote; `None` for anything else.
fn decode(body: &[u8]) -> Option<Request> {
    let mut r = Reader(body);
    let request = match r.byte()? {
        END => Request::End { id: r.u64()? },
        SPAWN => {
            let id = r.u64()?;
            let reads_input = r.byte()? != 0;
            let found = r.string()?;
            let cwd = r.string()?;
            let remove = r.list(|r| r.string())?;
            let set = r.list(|r| Some((r.string()?, r.string()?)))?;
            let argv = r.list(|r| r.string())?;
            Request::Spawn {
                spawn: Spawn {
                    id,
                    found,
                    cwd,
                    remove,
                    set,
                    argv,
                },
                reads_input,
            }
        }
        _ => return None,
    };
    r.0.is_empty().then_some(request)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<OsString> {
        let len = usize::try_from(self.u64()?).ok()?;
        Some(OsString::from_vec(self.take(len)?.to_vec()))
    }

    fn list<T>(&mut self, item: impl Fn(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let n = usize::try_from(self.u64()?).ok()?;
        // Each item takes at least 8 bytes: a count beyond that is a malformed message, not
        // an allocation to attempt.
        if n > self.0.len() / 8 {
            return None;
        }
        (0..n).map(|_| item(self)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spawn_and_its_descriptors_arrive_as_sent() {
        let (a, b) = UnixStream::pair().unwrap();
        let request = Request::Spawn {
            spawn: Spawn {
                id: 7,
                found: "/usr/bin/env".into(),
                cwd: "/tmp".into(),
                remove: vec!["SECRET".into()],
                set: vec![("A".into(), "b c".into()), ("EMPTY".into(), "".into())],
                argv: vec!["env".into(), "x\0y".into(), "".into()],
            },
            reads_input: true,
        };
        let (r, w) = std::io::pipe().unwrap();
        send(&a, &request, &[r.as_raw_fd(), w.as_raw_fd()]).unwrap();
        send(&a, &Request::End { id: 9 }, &[]).unwrap();
        let got = receive(&b).unwrap().unwrap();
        assert_eq!(got.request, request);
        assert_eq!(got.fds.len(), 2);
        let end = receive(&b).unwrap().unwrap();
        assert_eq!(end.request, Request::End { id: 9 });
        assert!(end.fds.is_empty());
        drop(a);
        assert!(receive(&b).unwrap().is_none());
    }

    #[test]
    fn a_request_larger_than_the_sockets_buffer_arrives_whole_with_its_descriptors() {
        let (a, b) = UnixStream::pair().unwrap();
        let request = Request::Spawn {
            spawn: Spawn {
                id: 3,
                argv: vec!["echo".into(), "x".repeat(3 << 20).into()],
                ..Spawn::default()
            },
            reads_input: false,
        };
        let receiver = std::thread::spawn(move || receive(&b).unwrap().unwrap());
        let (r, w) = std::io::pipe().unwrap();
        send(&a, &request, &[r.as_raw_fd(), w.as_raw_fd()]).unwrap();
        let got = receiver.join().unwrap();
        assert_eq!(got.request, request);
        assert_eq!(got.fds.len(), 2);
    }

    #[test]
    fn a_malformed_request_is_refused_not_allocated() {
        assert_eq!(decode(&[SPAWN]), None);
        let mut huge = vec![SPAWN];
        huge.extend_from_slice(&1u64.to_le_bytes());
        huge.push(0);
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(decode(&huge), None);
        assert_eq!(decode(&[9]), None);
    }
}
