//! The files Defender knows: one per process in the pools, with hashes and prevalence.

use super::*;

/// The file catalogue.
pub(super) fn files(rng: &mut StdRng, now: OffsetDateTime) -> Vec<FileInfo> {
    PROCS
        .iter()
        .map(|p| {
            let signed = p.publisher.is_some();
            FileInfo {
                sha1: hex_from(rng, 20),
                sha256: hex_from(rng, 32),
                md5: hex_from(rng, 16),
                global_prevalence: if p.malicious {
                    rng.random_range(3..400)
                } else {
                    rng.random_range(1_000_000..900_000_000)
                },
                global_first_observed: ago(
                    rng,
                    now,
                    Duration::days(if p.malicious { 10 } else { 400 }),
                    Duration::days(if p.malicious { 60 } else { 2000 }),
                ),
                global_last_observed: ago(rng, now, Duration::minutes(5), Duration::hours(12)),
                size: rng.random_range(40_000..4_000_000),
                file_type: Some(if p.name.ends_with(".docm") {
                    "Document".into()
                } else {
                    "PortableExecutable".into()
                }),
                is_pe_file: !p.name.ends_with(".docm"),
                file_publisher: p.publisher.map(str::to_string),
                file_product_name: p.publisher.map(|_| {
                    p.name
                        .trim_end_matches(".exe")
                        .trim_end_matches(".EXE")
                        .to_string()
                }),
                signer: p.publisher.map(str::to_string),
                issuer: p.publisher.map(|pb| {
                    if pb.starts_with("Microsoft") {
                        "Microsoft Windows Production PCA 2011".to_string()
                    } else {
                        "DigiCert Trusted G4 Code Signing RSA4096 SHA384 2021 CA1".to_string()
                    }
                }),
                signer_hash: if signed {
                    Some(hex_from(rng, 20))
                } else {
                    None
                },
                is_valid_certificate: signed,
                determination_type: if p.malicious {
                    "Malware".into()
                } else {
                    "Clean".into()
                },
                determination_value: if p.malicious {
                    match p.name {
                        "mimikatz.exe" => "HackTool:Win32/Mimikatz".into(),
                        "wacatac.dll" => "Trojan:Win32/Wacatac.B!ml".into(),
                        "invoice_2024.docm" => "TrojanDownloader:O97M/Donoff".into(),
                        _ => "Backdoor:Win32/Cobaltstrike".into(),
                    }
                } else {
                    String::new()
                },
                file_name: p.name.into(),
            }
        })
        .collect()
}
