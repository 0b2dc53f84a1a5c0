//! `herald presence show` and `herald contact add|list|remove`.
//!
//! Presence is live state held by the running server, so these commands ask it through the
//! admin listener (`[http] admin`); contact changes made there reach the user's watchers and
//! clients at once, which writing the store behind the server's back would not. When no
//! server answers, contact lists are read and changed in the store directly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use herald_presence::categories::roaming::ContactList;
use herald_presence::engine::PresenceReport;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub(crate) enum PresenceCommand {
    /// Print a user's aggregated state, each endpoint's publications and the current watchers.
    Show {
        /// The user, `sip:alice@example.test` or `alice@example.test`.
        uri: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ContactCommand {
    /// Add a contact to a user's list (or change its name and group).
    Add {
        /// The list's owner.
        user: String,
        /// The contact, `bob@example.test`.
        contact: String,
        /// The name shown in the list.
        #[arg(long)]
        name: Option<String>,
        /// The group id (1 = the default group).
        #[arg(long)]
        group: Option<u8>,
    },
    /// Print a user's contact list.
    List { user: String },
    /// Remove a contact from a user's list.
    Remove { user: String, contact: String },
}

pub(crate) fn presence(config: &Config, command: PresenceCommand) -> anyhow::Result<()> {
    match command {
        PresenceCommand::Show { uri } => {
            let stream = connect(config).with_context(|| {
                format!(
                    "herald does not answer on {} ([http] admin); is `herald serve` running?",
                    config.http.admin
                )
            })?;
            print!(
                "{}",
                call(stream, "GET", &format!("/presence/{}", path(&uri)))?
            );
        }
    }
    Ok(())
}

pub(crate) fn contact(config: &Config, command: ContactCommand) -> anyhow::Result<()> {
    let Some(stream) = connect(config) else {
        return contact_offline(config, command);
    };
    let out = match command {
        ContactCommand::Add {
            user,
            contact,
            name,
            group,
        } => {
            let mut query = format!("contact={}", encode(&contact));
            if let Some(name) = name {
                query.push_str(&format!("&name={}", encode(&name)));
            }
            if let Some(group) = group {
                query.push_str(&format!("&group={group}"));
            }
            call(
                stream,
                "POST",
                &format!("/contacts/{}?{query}", path(&user)),
            )?
        }
        ContactCommand::List { user } => {
            call(stream, "GET", &format!("/contacts/{}", path(&user)))?
        }
        ContactCommand::Remove { user, contact } => call(
            stream,
            "DELETE",
            &format!("/contacts/{}?contact={}", path(&user), encode(&contact)),
        )?,
    };
    print!("{out}");
    Ok(())
}

/// The contact commands against the store, for when the server is not running.
fn contact_offline(config: &Config, command: ContactCommand) -> anyhow::Result<()> {
    let directory = crate::admin_cli::open_directory(config)?;
    let aor = |text: &str| {
        herald_directory::Aor::parse(text.strip_prefix("sip:").unwrap_or(text))
            .with_context(|| format!("{text} is not a user@domain address"))
    };
    match command {
        ContactCommand::Add {
            user,
            contact,
            name,
            group,
        } => {
            let group = match group {
                None => None,
                Some(g) => Some(
                    herald_presence::categories::roaming::GroupId::new(g)
                        .with_context(|| format!("group {g}: groups are numbered 1 to 63"))?,
                ),
            };
            directory.add_contact(
                &aor(&user)?,
                &aor(&contact)?,
                name.as_deref(),
                group,
                config.presence.max_contacts as usize,
            )?;
            println!("added");
        }
        ContactCommand::List { user } => {
            print!(
                "{}",
                render_contacts(&directory.contact_list(&aor(&user)?)?)
            );
        }
        ContactCommand::Remove { user, contact } => {
            if !directory.remove_contact(&aor(&user)?, &aor(&contact)?)? {
                bail!("no such contact");
            }
            println!("removed");
        }
    }
    Ok(())
}

/// The report as `herald presence show` prints it.
pub(crate) fn render_report(report: &PresenceReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{}", report.uri);
    let _ = write!(
        out,
        "  availability: {:?} ({})",
        report.availability.band(),
        report.availability.value()
    );
    if let Some(activity) = &report.activity {
        let _ = write!(out, ", activity {}", activity.as_str());
    }
    out.push('\n');
    let _ = writeln!(out, "  endpoints: {}", report.endpoints.len());
    for e in &report.endpoints {
        let _ = writeln!(out, "    {e}");
    }
    let _ = writeln!(out, "  publications: {}", report.publications.len());
    for p in &report.publications {
        let _ = write!(out, "    {} expires={}", p.key, p.expiry);
        if let Some(endpoint) = &p.endpoint {
            let _ = write!(out, " endpoint={endpoint}");
        }
        if let Some(a) = p.availability {
            let _ = write!(out, " availability={:?} ({})", a.band(), a.value());
        }
        out.push('\n');
    }
    let _ = writeln!(out, "  watchers: {}", report.watchers.len());
    for w in &report.watchers {
        let _ = writeln!(
            out,
            "    {} {} expires in {} s",
            w.uri,
            w.kind,
            w.expires_in.as_secs()
        );
    }
    out
}

/// A contact list as `herald contact list` prints it.
pub(crate) fn render_contacts(list: &ContactList) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for g in &list.groups {
        let _ = writeln!(out, "group {} {}", g.id.value(), g.name);
        for c in list.contacts.iter().filter(|c| c.groups.contains(&g.id)) {
            let name = if c.name.is_empty() {
                String::new()
            } else {
                format!(" \"{}\"", c.name)
            };
            let _ = writeln!(out, "  {}{name}", c.uri);
        }
    }
    out
}

/// A connection to the running server's admin listener, `None` when nothing answers.
fn connect(config: &Config) -> Option<TcpStream> {
    let mut addr = config.http.admin;
    if addr.ip().is_unspecified() {
        addr = SocketAddr::new(
            if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            },
            addr.port(),
        );
    }
    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()
}

/// One request to the admin listener; the answer's body on 2xx.
fn call(mut stream: TcpStream, method: &str, target: &str) -> anyhow::Result<String> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: herald\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .context("reading the server's answer")?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("the server's answer is not HTTP")?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the server's answer has no status")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    if !(200..300).contains(&status) {
        bail!("{}", body.trim_end());
    }
    Ok(body)
}

/// The body of a chunked answer.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A user address as a path segment.
fn path(uri: &str) -> String {
    encode(uri.strip_prefix("sip:").unwrap_or(uri))
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `@`.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_keeps_addresses_readable_and_escapes_the_rest() {
        assert_eq!(encode("bob@example.test"), "bob@example.test");
        assert_eq!(encode("Bob Smith&co"), "Bob%20Smith%26co");
    }

    #[test]
    fn dechunk_joins_chunks() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
