//! `sql` steps over TLS, through the real binary: `encrypt=true` (the TLS handshake inside
//! TDS pre-login packets, then TLS underneath TDS) and `encrypt=strict` (TDS 8.0: TLS first,
//! ALPN `tds/8.0`). The server is a Python endpoint (`ENDPOINT`) that does the server's half
//! of the handshake with its own TLS stack, reports the first packet it could decrypt, and
//! hangs up: that the server read the client's LOGIN7 or PRELOGIN is the proof that the
//! client's TLS works. Certificates are made for each test by the `openssl` command.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::{Output, Test};

/// The server's half: one connection, then one line on stdout (after `port N`).
const ENDPOINT: &str = r#"
import socket, ssl, struct, sys

mode, cert, key, tls_max = sys.argv[1:5]

def context():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.load_cert_chain(cert, key)
    if tls_max == '1.2':
        c.maximum_version = ssl.TLSVersion.TLSv1_2
    if mode == 'strict':
        c.set_alpn_protocols(['tds/8.0'])
    return c

def exact(read, n):
    data = b''
    while len(data) < n:
        chunk = read(n - len(data))
        if not chunk:
            raise EOFError('the client hung up')
        data += chunk
    return data

def packet(read):
    header = exact(read, 8)
    return header[0], exact(read, struct.unpack('>H', header[2:4])[0] - 8)

def send(conn, kind, payload):
    conn.sendall(struct.pack('>BBHHBB', kind, 1, len(payload) + 8, 0, 1, 0) + payload)

def prelogin_reply():
    # VERSION, ENCRYPTION = ON, INSTOPT, THREADID, MARS
    options = [(0, bytes([16, 0, 0x10, 0, 0, 0])), (1, b'\x01'), (2, b'\0'), (3, b''), (4, b'\0')]
    table, data, offset = b'', b'', len(options) * 5 + 1
    for token, value in options:
        table += struct.pack('>BHH', token, offset, len(value))
        data += value
        offset += len(value)
    return table + b'\xff' + data

def inside_prelogin(conn):
    kind, _ = packet(conn.recv)
    assert kind == 0x12, kind
    send(conn, 0x04, prelogin_reply())
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context().wrap_bio(incoming, outgoing, server_side=True)
    done = False
    while not done:
        kind, payload = packet(conn.recv)
        assert kind == 0x12, kind
        incoming.write(payload)
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            pass
        if outgoing.pending:
            send(conn, 0x12, outgoing.read())
    def read(n):
        while True:
            try:
                return tls.read(n)
            except ssl.SSLWantReadError:
                chunk = conn.recv(65536)
                if not chunk:
                    raise EOFError('the client hung up')
                incoming.write(chunk)
    kind, _ = packet(read)
    return tls, kind, None

def strict(conn):
    tls = context().wrap_socket(conn, server_side=True)
    kind, _ = packet(tls.recv)
    return tls, kind, tls.selected_alpn_protocol()

listener = socket.socket()
listener.bind(('127.0.0.1', 0))
listener.listen(1)
print('port', listener.getsockname()[1], flush=True)
listener.settimeout(60)
conn, _ = listener.accept()
conn.settimeout(20)
try:
    tls, kind, alpn = (strict if mode == 'strict' else inside_prelogin)(conn)
    print('%s, ALPN %s: decrypted packet type 0x%02x' % (tls.version(), alpn, kind), flush=True)
except (ssl.SSLError, EOFError, OSError) as error:
    print('no TLS session:', type(error).__name__, flush=True)
"#;

/// Runs `openssl` in `dir` with `args`, words separated by spaces.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split(' '))
        .current_dir(dir)
        .output()
        .expect("run openssl (the TLS tests need it)");
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A CA (`ca.pem`), and a server certificate it signed for `name` with a key of `algorithm`.
fn certificates(dir: &Path, algorithm: &str, name: &str) {
    openssl(
        dir,
        "req -x509 -newkey rsa:2048 -days 2 -nodes -keyout ca.key -out ca.pem -subj /CN=test-CA",
    );
    let key = match algorithm {
        "rsa" => "rsa:2048",
        _ => "ec -pkeyopt ec_paramgen_curve:P-256",
    };
    openssl(
        dir,
        &format!("req -newkey {key} -nodes -keyout server.key -out server.csr -subj /CN=server"),
    );
    std::fs::write(dir.join("san.ext"), format!("subjectAltName=DNS:{name}\n")).expect("write");
    openssl(
        dir,
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
         -days 2 -extfile san.ext",
    );
}

/// The endpoint, started in `dir`, and the port it listens on.
fn endpoint(dir: &Path, mode: &str, tls_max: &str) -> (Child, u16) {
    std::fs::write(dir.join("endpoint.py"), ENDPOINT).expect("write the endpoint");
    let mut child = Command::new("python3")
        .args(["endpoint.py", mode, "server.pem", "server.key", tls_max])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    let mut line = String::new();
    let stdout = child.stdout.as_mut().expect("endpoint stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("endpoint port");
    let port = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("endpoint said {line:?}"));
    (child, port)
}

/// The endpoint a test connects to: its key `algorithm` (`rsa` or `ec`), the `name` its
/// certificate is for, `mode` (`prelogin` answers `encrypt=true`, `strict` `encrypt=strict`)
/// and the highest TLS version it accepts.
struct Server<'a> {
    algorithm: &'a str,
    name: &'a str,
    mode: &'a str,
    tls_max: &'a str,
}

const SERVER: Server = Server {
    algorithm: "rsa",
    name: "localhost",
    mode: "prelogin",
    tls_max: "1.3",
};

/// Runs one `sql` step on `localhost` against `server`, with the extra connection-string
/// settings `trust`; returns what the runbook printed and the endpoint's report.
fn connect(server: Server, trust: &str) -> (Output, String) {
    let Server {
        algorithm,
        name,
        mode,
        tls_max,
    } = server;
    let t = Test::new();
    certificates(t.path(), algorithm, name);
    let (child, port) = endpoint(t.path(), mode, tls_max);
    let encrypt = if mode == "strict" { "strict" } else { "true" };
    let yaml = format!(
        "runbook: 1\nname: tls\nconnections:\n  db: {{ mssql: 'server=tcp:localhost,{port};user id=sa;password=x;encrypt={encrypt}{trust}' }}\nsteps:\n  - id: q\n    sql: {{ connection: db, query: SELECT 1 }}\n    timeout: 20s\n"
    );
    let t = t.file("tls.yaml", yaml).args(["run", "tls.yaml"]);
    let out = t.run();
    // A runbook that never connected leaves the endpoint waiting: this connection ends the wait
    // (and is refused or ignored when the runbook's own connection was served).
    let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    let report = child.wait_with_output().expect("endpoint report");
    let report = String::from_utf8_lossy(&report.stdout);
    // The port line was read already.
    let report = report.lines().next().unwrap_or_default().to_owned();
    (out, report)
}

const TRUST_CA: &str = ";TrustServerCertificateCA=ca.pem";

#[test]
fn encrypt_true_sends_the_login_over_tls_1_3_and_1_2() {
    for (tls_max, version) in [("1.3", "TLSv1.3"), ("1.2", "TLSv1.2")] {
        let (out, report) = connect(Server { tls_max, ..SERVER }, TRUST_CA);
        assert_eq!(
            report,
            format!("{version}, ALPN None: decrypted packet type 0x10"),
            "{}",
            out.stdout
        );
        // The endpoint hangs up after reading the login: the step fails after TLS.
        assert_eq!(out.code, 1, "{}", out.stdout);
        assert!(
            out.stdout.contains("cannot log in to localhost:"),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn encrypt_strict_was_refused_for_want_of_tds80() {
    for algorithm in ["rsa", "ec"] {
        let server = Server {
            algorithm,
            mode: "strict",
            ..SERVER
        };
        let (out, report) = connect(server, TRUST_CA);
        assert_eq!(
            report, "TLSv1.3, ALPN tds/8.0: decrypted packet type 0x12",
            "{algorithm}: {}",
            out.stdout
        );
        assert!(
            !out.stdout.contains("invalid connection string"),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn an_untrusted_server_certificate_is_rejected_before_the_login() {
    for mode in ["prelogin", "strict"] {
        let (out, report) = connect(Server { mode, ..SERVER }, "");
        assert!(report.starts_with("no TLS session"), "{mode}: {report}");
        assert_eq!(out.code, 1, "{}", out.stdout);
        assert!(
            out.stdout.contains(
                "the server's certificate was rejected during the TLS handshake: UnknownIssuer"
            ),
            "{mode}: {}",
            out.stdout
        );
    }
}

#[test]
fn a_certificate_for_another_name_is_rejected() {
    let server = Server {
        algorithm: "ec",
        name: "elsewhere.example",
        ..SERVER
    };
    let (out, report) = connect(server, TRUST_CA);
    assert!(report.starts_with("no TLS session"), "{report}");
    assert!(
        out.stdout
            .contains("certificate not valid for name \"localhost\"; certificate is only valid for DnsName(\"elsewhere.example\")"),
        "{}",
        out.stdout
    );
}

#[test]
fn trust_server_certificate_skips_the_check() {
    let server = Server {
        name: "elsewhere.example",
        tls_max: "1.2",
        ..SERVER
    };
    let (out, report) = connect(server, ";TrustServerCertificate=true");
    assert_eq!(
        report, "TLSv1.2, ALPN None: decrypted packet type 0x10",
        "{}",
        out.stdout
    );
}
