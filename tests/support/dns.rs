//! A real DNS server on loopback (hickory-server in the test process), answering over UDP and
//! TCP on one port of 127.0.0.1 for one zone of scripted TXT and MX records. A name in the zone
//! without records answers NODATA, a name outside it REFUSED, as an authoritative server does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{MX, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};

/// One scripted record.
#[derive(Clone, Debug)]
pub enum Rec {
    /// A TXT record; text longer than 255 bytes is split into several strings, as DNS must.
    Txt(String),
    /// An MX record naming this exchange, preference 10.
    Mx(String),
}

/// A running server; it stops when dropped.
pub struct DnsServer {
    pub addr: SocketAddr,
    _server: Server<Catalog>,
}

fn name(text: &str) -> Name {
    let fq = format!("{}.", text.trim_end_matches('.'));
    Name::from_ascii(&fq).expect("a DNS name")
}

impl DnsServer {
    /// Serves `zone` with `records` (owner name, record) on 127.0.0.1, UDP and TCP on one port.
    pub async fn start(zone: &str, records: &[(&str, Rec)]) -> DnsServer {
        let origin = name(zone);
        let mut handler = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
            origin.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        );
        let soa = SOA::new(
            name(&format!("ns.{zone}")),
            name(&format!("hostmaster.{zone}")),
            1,
            3600,
            600,
            86400,
            60,
        );
        assert!(handler.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1));
        for (owner, rec) in records {
            let data = match rec {
                Rec::Txt(text) => RData::TXT(TXT::from_bytes(
                    text.as_bytes().chunks(255).collect::<Vec<_>>(),
                )),
                Rec::Mx(exchange) => RData::MX(MX::new(10, name(exchange))),
            };
            assert!(handler.upsert_mut(Record::from_rdata(name(owner), 60, data), 1));
        }
        let mut catalog = Catalog::new();
        let handler: Arc<dyn ZoneHandler> = Arc::new(handler);
        catalog.upsert(LowerName::new(&origin), vec![handler]);
        let mut server = Server::new(catalog);
        // The resolver asks one port over UDP and TCP: find a port free for both.
        let (udp, tcp) = loop {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind DNS UDP");
            let port = udp.local_addr().expect("udp addr").port();
            if let Ok(tcp) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().expect("udp addr");
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 64);
        DnsServer {
            addr,
            _server: server,
        }
    }
}
