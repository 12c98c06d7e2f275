//! The zonerank.v1 API: generated messages, clients and servers, mirrored in `zonerank::v1`.

pub use prost;
pub use prost_types;
pub use tonic;

/// The `zonerank` protobuf packages.
pub mod zonerank {
    /// Package `zonerank.v1`.
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("zonerank.v1");
    }
}

pub use zonerank::v1;

pub mod convert;
pub mod page;

/// The `zonerank.v1` servers over the messages of [`v1`], except that `GetRanking` answers a
/// [`page::RankingPage`], so a cached page is sent as the bytes the cache holds. The services'
/// names, methods and wire are those of [`v1`]'s servers.
pub mod page_server {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/page_server/zonerank.v1.rs"));
}

/// The encoded file descriptor set of every zonerank proto, for the reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/zonerank_descriptor.bin"));
