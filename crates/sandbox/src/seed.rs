use crate::SandboxTenant;
pub struct Machine { pub id: String, pub state: crate::state::MachineState }
pub struct TenantData { pub public: SandboxTenant, pub machines: Vec<Machine> }
impl TenantData { pub fn settle_actions(&mut self, _t: &crate::ActionTimings) {} }
pub fn generate(_seed: u64, _base: &str) -> Vec<TenantData> { Vec::new() }
