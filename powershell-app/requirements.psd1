# Managed dependencies: modules the Functions host downloads from the PowerShell Gallery before
# the first invocation (host.json: managedDependency.enabled). The job worker itself needs none:
# it talks to storage over REST. List here what YOUR modules need, for example for
# SentinelManager.ps1:
#     'Az.Accounts' = '4.*'
#     'Az.SecurityInsights' = '3.*'
# Pin major versions: a new major version can change cmdlet output your functions rely on.
# Modules you ship yourself go in Modules/ (on PSModulePath) and are named in PS_MODULES.
@{
}
