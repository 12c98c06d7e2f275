//! Compiles proto/zonerank/v1 with protox (pure Rust, no system protoc) and hands the descriptor
//! set to tonic-prost-build. The encoded descriptor set is also written for server reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not baked in with env!: a build script compiled in one checkout and
    // reused from a copied target directory must still read this checkout's protos.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "zonerank/v1/audit_service.proto",
        "zonerank/v1/common.proto",
        "zonerank/v1/ingestion_service.proto",
        "zonerank/v1/metrics_service.proto",
        "zonerank/v1/ranking_service.proto",
        "zonerank/v1/assessment_service.proto",
    ];
    // Since tonic 0.14 the build script must name its inputs itself, or cargo reruns it on any
    // change in the package and every build recompiles the API.
    for file in &files {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    let fds = protox::compile(files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("zonerank_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Default stubs: an RPC added to the protos answers UNIMPLEMENTED until a service
        // implements it, instead of breaking every build in between.
        .generate_default_stubs(true)
        // `prost::Name` on every message: the request checks find a message's descriptor by
        // its full name.
        .compile_fds_with_config(fds.clone(), {
            let mut config = tonic_prost_build::Config::new();
            config.enable_type_names();
            config
        })?;

    // The servers once more, in `page_server/`, over the messages generated above, except that
    // GetRanking answers a `RankingPage`: a cached page goes out as the bytes the cache holds,
    // neither decoded nor encoded again. The wire and the descriptors are the same.
    let page_dir = out_dir.join("page_server");
    std::fs::create_dir_all(&page_dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .generate_default_stubs(true)
        .out_dir(&page_dir)
        .extern_path(".zonerank.v1", "crate::v1")
        .extern_path(
            ".zonerank.v1.GetRankingResponse",
            "crate::page::RankingPage",
        )
        .compile_fds_with_config(fds, tonic_prost_build::Config::new())?;
    Ok(())
}
