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

/// The encoded file descriptor set of every zonerank proto, for the reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/zonerank_descriptor.bin"));
