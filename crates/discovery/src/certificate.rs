//! The names a Front End's certificate must cover, derived from the topology so that every name
//! DNS and autodiscover hand to clients is one the certificate matches.
//!
//! Used by `herald cert request` (the subject and SAN list an admin takes to a CA) and by the
//! self-signed certificate generated at first start.

use std::fmt::Write as _;

use crate::name::Fqdn;
use crate::topology::{Pool, Topology};

/// Subject and subject alternative names for one pool's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateNames {
    /// The subject common name: the pool FQDN (Lync puts it there too).
    pub subject: Fqdn,
    /// Every DNS name, the subject first, without repeats.
    pub sans: Vec<Fqdn>,
}

impl CertificateNames {
    /// The names for the pool `pool` (the pool FQDN or a member's), or for this server's pool
    /// ([`Topology::local_pool`]). `None` when no pool has that name.
    ///
    /// The list: the pool FQDN, its members, its internal and external web services FQDNs; for
    /// every SIP domain `sip`, `sipinternal`, `sipexternal`, `lyncdiscover` and
    /// `lyncdiscoverinternal`; the Access Edge name when one is configured; the simple URL hosts
    /// (meet, dialin, admin).
    pub fn for_pool(topology: &Topology, pool: Option<&str>) -> Option<Self> {
        let pool: &Pool = match pool {
            Some(name) => topology.pool_of(name)?,
            None => topology.local_pool(),
        };
        Some(Self::for_pools(topology, pool, &[]))
    }

    /// The names for this server's pool followed by every other pool's own names (FQDN,
    /// members, web services): what a certificate shared by all servers needs, as the one
    /// generated into a data folder that the members of several pools share.
    pub fn for_deployment(topology: &Topology) -> Self {
        let local = topology.local_pool();
        let others: Vec<&Pool> = topology.pools().iter().filter(|p| *p != local).collect();
        Self::for_pools(topology, local, &others)
    }

    fn for_pools(topology: &Topology, pool: &Pool, others: &[&Pool]) -> Self {
        let mut sans: Vec<Fqdn> = Vec::new();
        let mut add = |name: Fqdn| {
            if !sans.contains(&name) {
                sans.push(name);
            }
        };
        add(pool.fqdn.clone());
        for m in &pool.members {
            add(m.fqdn.clone());
        }
        add(pool.web_internal.clone());
        add(pool.web_external.clone());
        for domain in topology.domains() {
            for label in DOMAIN_LABELS {
                add(domain.prefixed(label));
            }
        }
        if let Some(access) = &topology.edge().access_fqdn {
            add(access.clone());
        }
        for host in &topology.simple_urls().hosts {
            add(host.clone());
        }
        for other in others {
            add(other.fqdn.clone());
            for m in &other.members {
                add(m.fqdn.clone());
            }
            add(other.web_internal.clone());
            add(other.web_external.clone());
        }
        Self {
            subject: pool.fqdn.clone(),
            sans,
        }
    }

    /// The SAN list as plain strings (what rcgen takes).
    pub fn dns_names(&self) -> Vec<String> {
        self.sans.iter().map(ToString::to_string).collect()
    }

    /// What `herald cert request` prints.
    pub fn render_text(&self) -> String {
        let mut out = format!("Subject: CN={}\nSubject alternative names:\n", self.subject);
        for name in &self.sans {
            let _ = writeln!(out, "  DNS:{name}");
        }
        out
    }
}

/// The per-domain names clients look up (the Lync client checks the certificate against them).
const DOMAIN_LABELS: [&str; 5] = [
    "sip",
    "sipinternal",
    "sipexternal",
    "lyncdiscover",
    "lyncdiscoverinternal",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{LocalServer, TopologyConfig};

    fn topology() -> Topology {
        #[derive(serde::Deserialize)]
        struct File {
            topology: TopologyConfig,
        }
        let file: File = toml::from_str(
            r#"[[topology.pools]]
            fqdn = "pool01.contoso.com"
            members = [
              { fqdn = "fe01.contoso.com", addresses = ["10.0.0.11"] },
              { fqdn = "fe02.contoso.com", addresses = ["10.0.0.12"] },
            ]
            [[topology.pools]]
            fqdn = "pool02.contoso.com"
            web_external = "lyncweb2.contoso.com"
            members = [{ fqdn = "fe21.contoso.com", addresses = ["10.0.0.21"] }]"#,
        )
        .unwrap();
        let local = LocalServer {
            domains: vec!["contoso.com".into(), "fabrikam.com".into()],
            ..LocalServer::default()
        };
        Topology::from_config(&file.topology, &local).unwrap()
    }

    #[test]
    fn san_list_covers_lync_names_of_every_domain_pool_and_members() {
        let names = CertificateNames::for_pool(&topology(), None).unwrap();
        assert_eq!(names.subject.as_str(), "pool01.contoso.com");
        let sans = names.dns_names();
        assert_eq!(
            &sans[..3],
            ["pool01.contoso.com", "fe01.contoso.com", "fe02.contoso.com"]
        );
        for d in ["contoso.com", "fabrikam.com"] {
            for l in DOMAIN_LABELS {
                assert!(sans.contains(&format!("{l}.{d}")), "{l}.{d}");
            }
        }
        for extra in [
            "lyncweb.contoso.com",
            "meet.contoso.com",
            "dialin.contoso.com",
            "admin.contoso.com",
        ] {
            assert!(sans.contains(&extra.to_owned()), "{extra}");
        }
        assert!(!sans.contains(&"fe21.contoso.com".to_owned()));
        let mut unique = sans.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), sans.len());
    }

    #[test]
    fn names_for_another_pool_by_member_name() {
        let names = CertificateNames::for_pool(&topology(), Some("fe21.contoso.com")).unwrap();
        assert_eq!(names.subject.as_str(), "pool02.contoso.com");
        assert!(
            names
                .dns_names()
                .contains(&"lyncweb2.contoso.com".to_owned())
        );
        assert!(CertificateNames::for_pool(&topology(), Some("nosuch.contoso.com")).is_none());
    }

    #[test]
    fn a_server_of_the_second_pool_requests_its_own_pools_names_and_generates_all() {
        let t = topology().locate(Some("fe21.contoso.com"), &[]).unwrap();
        let own = CertificateNames::for_pool(&t, None).unwrap();
        assert_eq!(own.subject.as_str(), "pool02.contoso.com");
        assert!(!own.dns_names().contains(&"fe01.contoso.com".to_owned()));

        let all = CertificateNames::for_deployment(&t);
        assert_eq!(all.subject.as_str(), "pool02.contoso.com");
        let sans = all.dns_names();
        assert_eq!(&sans[..own.sans.len()], own.dns_names().as_slice());
        for name in [
            "pool01.contoso.com",
            "fe01.contoso.com",
            "fe02.contoso.com",
            "lyncweb.contoso.com",
        ] {
            assert!(sans.contains(&name.to_owned()), "{name}");
        }
        let mut unique = sans.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), sans.len());
    }

    #[test]
    fn single_box_request_text() {
        let t = Topology::single_box("contoso.com", &["192.0.2.1".parse().unwrap()], 5061, None)
            .unwrap();
        let text = CertificateNames::for_pool(&t, None).unwrap().render_text();
        assert!(text.starts_with(
            "Subject: CN=pool.contoso.com\nSubject alternative names:\n  DNS:pool.contoso.com\n"
        ));
        assert!(text.contains("  DNS:lyncdiscoverinternal.contoso.com\n"));
    }
}
