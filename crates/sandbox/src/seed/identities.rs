//! The tenant's people: user accounts with their UPNs, SIDs and object ids.

use super::*;

/// Sixteen users (two of them domain admins), named from the pools.
pub(super) fn users(rng: &mut StdRng, spec: &TenantSpec) -> Vec<User> {
    let mail_domain = format!("{}.com", spec.domain);
    let mut users: Vec<User> = Vec::new();
    let sid_base = format!(
        "S-1-5-21-{}-{}-{}",
        rng.random_range(1_000_000_000u64..4_000_000_000),
        rng.random_range(1_000_000_000u64..4_000_000_000),
        rng.random_range(1_000_000_000u64..4_000_000_000)
    );
    for i in 0..16 {
        let first = FIRST[(i + rng.random_range(0..FIRST.len())) % FIRST.len()];
        let last = *pick(rng, LAST);
        let account = format!("{}{}", first.chars().next().unwrap_or('x'), last).to_lowercase();
        if users.iter().any(|u| u.account == account) {
            continue;
        }
        users.push(User {
            upn: format!(
                "{}.{}@{}",
                first.to_lowercase(),
                last.to_lowercase(),
                mail_domain
            ),
            display: format!("{first} {last}"),
            account,
            sid: format!("{sid_base}-{}", 1100 + i),
            object_id: guid_from(rng),
            admin: i < 2,
        });
    }
    users
}
