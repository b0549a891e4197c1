//! The proxier against fakes: a sync writes through the applier, a rejected
//! transaction forces the next sync to be full, UDP endpoint changes delete
//! conntrack entries, and health-check ports count ready local endpoints.

use std::time::Instant;

use proxy::app::backend::NftablesBackend;
use proxy::app::proxier::{HealthCheck, Proxier};
use proxy::applier::{ApplyError, RulesApplier};
use proxy::conntrack::{ConntrackCleaner, ConntrackError, Deletion};
use proxy::nftables::NftConfig;
use proxy::{IpFamily, NamespacedName};
use serde_json::json;
use std::sync::{Arc, Mutex};
use test_support::proxy::{service, slice};

/// Shares what the boxed fakes record with the test.
#[derive(Clone, Default)]
struct Shared {
    applied: Arc<Mutex<Vec<String>>>,
    fail_next: Arc<Mutex<bool>>,
    deleted: Arc<Mutex<Vec<Deletion>>>,
    listings: Arc<Mutex<usize>>,
}

impl RulesApplier for Shared {
    fn apply(&mut self, tx: &str) -> Result<(), ApplyError> {
        if std::mem::take(&mut *self.fail_next.lock().unwrap()) {
            return Err(ApplyError::Rejected { tool: "nft".into(), message: "Error: boom".into() });
        }
        self.applied.lock().unwrap().push(tx.to_string());
        Ok(())
    }

    fn existing_objects(&mut self, _family: IpFamily) -> Option<(Vec<String>, Vec<String>)> {
        *self.listings.lock().unwrap() += 1;
        Some((vec!["service-X-ns/old/tcp/p80".into()], Vec::new()))
    }
}

impl ConntrackCleaner for Shared {
    fn delete(&mut self, d: &Deletion) -> Result<(), ConntrackError> {
        self.deleted.lock().unwrap().push(d.clone());
        Ok(())
    }
}

fn proxier(shared: &Shared) -> Proxier {
    Proxier::new(
        IpFamily::V4,
        Box::new(NftablesBackend::new(NftConfig::new(IpFamily::V4, "node1"))),
        Box::new(shared.clone()),
        Box::new(shared.clone()),
    )
}

#[test]
fn failed_sync_is_followed_by_a_full_one() {
    let shared = Shared::default();
    let mut p = proxier(&shared);
    p.on_service(None, Some(&test_support::proxy::cluster_ip_service("ns", "a", "198.18.140.10")));
    let r = p.sync(Instant::now(), false).unwrap();
    assert!(r.full);
    p.on_endpoint_slice(&slice("ns", "a", 8080, &[("198.18.141.2", None)]), false);
    *shared.fail_next.lock().unwrap() = true;
    let err = p.sync(Instant::now(), false).unwrap_err();
    assert!(err.to_string().contains("boom"));
    let r = p.sync(Instant::now(), false).unwrap();
    assert!(r.full, "after a failure the whole table is rewritten");
    let last = shared.applied.lock().unwrap().last().cloned().unwrap();
    assert!(last.contains("{ 0 : 198.18.141.2 . 8080 }"), "{last}");
}

#[test]
fn leftovers_are_listed_only_until_the_first_full_sync_applies() {
    let shared = Shared::default();
    let mut p = proxier(&shared);
    *shared.fail_next.lock().unwrap() = true;
    assert!(p.sync(Instant::now(), false).is_err());
    assert!(p.sync(Instant::now(), false).unwrap().full);
    let first = shared.applied.lock().unwrap().last().cloned().unwrap();
    assert!(first.contains("flush chain ip kube-proxy service-X-ns/old/tcp/p80"), "{first}");
    // Listing dumps the whole table: not again for later (forced) full syncs.
    assert!(p.sync(Instant::now(), true).unwrap().full);
    assert_eq!(*shared.listings.lock().unwrap(), 2);
}

#[test]
fn udp_endpoint_removal_clears_conntrack_and_health_checks_count() {
    let shared = Shared::default();
    let mut p = proxier(&shared);
    let svc = service(
        "ns",
        "dns",
        json!({"type": "LoadBalancer", "clusterIP": "198.18.140.53", "externalTrafficPolicy": "Local",
               "healthCheckNodePort": 32000,
               "ports": [{"name": "p80", "port": 53, "protocol": "UDP", "nodePort": 30053}]}),
        json!({}),
    );
    p.on_service(None, Some(&svc));
    let mut s = slice("ns", "dns", 5353, &[("198.18.141.2", Some("node1")), ("198.18.141.3", Some("node2"))]);
    s.ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
    p.on_endpoint_slice(&s, false);
    p.sync(Instant::now(), false).unwrap();
    assert_eq!(p.health_checks().get(&NamespacedName::new("ns", "dns")), Some(&HealthCheck { port: 32000, local_endpoints: 1 }));
    assert_eq!(shared.deleted.lock().unwrap().len(), 2, "service IP and node port of a newly served UDP service");
    shared.deleted.lock().unwrap().clear();
    s.endpoints.as_mut().unwrap().retain(|e| e.addresses[0] != "198.18.141.2");
    p.on_endpoint_slice(&s, false);
    let r = p.sync(Instant::now(), false).unwrap();
    assert!(!r.full);
    assert_eq!(r.conntrack_deleted, 2);
    assert!(shared.deleted.lock().unwrap().contains(&Deletion::Nat {
        origin: "198.18.140.53".parse().unwrap(),
        endpoint: "198.18.141.2".parse().unwrap(),
        protocol: proxy::Protocol::Udp,
    }));
    assert_eq!(p.health_checks()[&NamespacedName::new("ns", "dns")].local_endpoints, 0);
}

/// After a rejected transaction the kernel's state is unknown: the next full
/// sync lists it again and deletes only sets that are really there (here the
/// affinity set the failed sync meant to create is not).
#[test]
fn a_failed_sync_is_followed_by_a_listing_and_no_blind_set_deletes() {
    let shared = Shared::default();
    let mut p = proxier(&shared);
    p.on_service(
        None,
        Some(&service(
            "ns",
            "sticky",
            json!({"clusterIP": "198.18.140.20", "sessionAffinity": "ClientIP",
                   "ports": [{"name": "p80", "port": 80, "protocol": "TCP"}]}),
            json!({}),
        )),
    );
    p.on_endpoint_slice(&slice("ns", "sticky", 8080, &[("198.18.141.1", None)]), false);
    assert!(p.sync(Instant::now(), false).unwrap().full);
    assert_eq!(*shared.listings.lock().unwrap(), 1);

    p.on_endpoint_slice(&slice("ns", "sticky", 8080, &[("198.18.141.2", None)]), false);
    *shared.fail_next.lock().unwrap() = true;
    assert!(p.sync(Instant::now(), false).is_err());

    p.on_endpoint_slice(&slice("ns", "sticky", 8080, &[("198.18.141.3", None)]), false);
    let r = p.sync(Instant::now(), false).unwrap();
    assert!(r.full);
    assert_eq!(*shared.listings.lock().unwrap(), 2, "listed again");
    let last = shared.applied.lock().unwrap().last().cloned().unwrap();
    assert!(!last.lines().any(|l| l.starts_with("delete set") && l.contains("affinity-")), "only listed sets are deleted:\n{last}");
    assert!(last.contains("flush chain ip kube-proxy service-X-ns/old/tcp/p80"));

    // A periodic (forced) full sync knows what it wrote: no listing.
    assert!(p.sync(Instant::now(), true).unwrap().full);
    assert_eq!(*shared.listings.lock().unwrap(), 2);
}
