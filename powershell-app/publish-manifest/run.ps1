# Writes powershell/manifest.json (the allow-listed functions with their parameters) on start
# and on PS_MANIFEST_SCHEDULE, so a changed allow-list or module reaches the MCP handler's
# ps_ tools without a redeploy of the handler.
param($Timer)

Publish-JobManifest
