//! `zonerank auth keygen` (a signing key and its JWKS) and `zonerank auth token` (a token
//! signed by that key), for deployments without an identity provider and for trying auth out.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use zonerank_server::auth::keys::{KeyKind, SigningKey, TokenClaims};

/// `zonerank auth …`.
#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {
    /// Write a new signing key (`signing-key.pem`) and the key set servers read (`jwks.json`).
    Keygen {
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The kind of key.
        #[arg(long, value_enum, default_value_t = KeyKind::Ed25519)]
        kind: KeyKind,
    },
    /// Print a token signed by `--key` for `--sub` with the given roles and regions.
    Token {
        /// The signing key written by `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The principal (`sub`).
        #[arg(long)]
        sub: String,
        /// Roles: viewer, submitter, assessor, admin (repeatable).
        #[arg(long = "role", required = true, value_parser = ["viewer", "submitter", "assessor", "admin"])]
        roles: Vec<String>,
        /// GB/T 2260 codes of the regions a submitter may write under (repeatable).
        #[arg(long = "region")]
        regions: Vec<String>,
        /// How long the token is valid: `90s`, `30m`, `1h`, `7d`.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: Duration,
        /// The `iss` claim (the server's `--auth-issuer`).
        #[arg(long, env = "ZONERANK_AUTH_ISSUER", default_value = "zonerank")]
        issuer: String,
        /// The `aud` claim (the server's `--auth-audience`).
        #[arg(long, env = "ZONERANK_AUTH_AUDIENCE", default_value = "zonerank")]
        audience: String,
    },
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text}: expected a number and s, m, h or d"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{text}: the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

pub fn run(command: AuthCommand) -> ExitCode {
    let result = match command {
        AuthCommand::Keygen { out, kind } => keygen(&out, kind),
        AuthCommand::Token {
            key,
            sub,
            roles,
            regions,
            ttl,
            issuer,
            audience,
        } => std::fs::read_to_string(&key)
            .map_err(|e| format!("{}: {e}", key.display()))
            .and_then(|pem| {
                SigningKey::from_pem(&pem).map_err(|e| format!("{}: {e}", key.display()))
            })
            .and_then(|key| {
                let claims = TokenClaims {
                    subject: &sub,
                    roles: &roles,
                    regions: &regions,
                    issuer: &issuer,
                    audience: &audience,
                    ttl_secs: ttl.as_secs(),
                };
                key.sign(&claims.to_json()).map_err(|e| e.to_string())
            })
            .map(|token| println!("{token}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(out: &std::path::Path, kind: KeyKind) -> Result<(), String> {
    let key = SigningKey::generate(kind).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let key_path = out.join("signing-key.pem");
    let jwks_path = out.join("jwks.json");
    write_private(&key_path, &key.pem())?;
    let jwks = serde_json::to_string_pretty(&key.jwks()).map_err(|e| e.to_string())?;
    std::fs::write(&jwks_path, jwks + "\n").map_err(|e| format!("{}: {e}", jwks_path.display()))?;
    println!("signing key: {} (keep it secret)", key_path.display());
    println!("key set:     {} (for --auth-jwks)", jwks_path.display());
    Ok(())
}

/// Writes `content` readable by its owner only.
fn write_private(path: &std::path::Path, content: &str) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(content.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}
