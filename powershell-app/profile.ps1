# Runs once per PowerShell worker process (cold start), before any function runs.
#
# It signs in to Azure with the app's managed identity when Az.Accounts is available (your
# modules may need an Az context; the job worker itself does not), then reads the worker's
# settings and imports the modules in PS_MODULES. A configuration error is kept and reported by
# every job (which then fails with the reason) rather than stopping the worker silently.

if ($env:IDENTITY_ENDPOINT -and (Get-Module -ListAvailable -Name Az.Accounts)) {
    Disable-AzContextAutosave -Scope Process | Out-Null
    if ($env:AZURE_CLIENT_ID) {
        Connect-AzAccount -Identity -AccountId $env:AZURE_CLIENT_ID | Out-Null
    }
    else {
        Connect-AzAccount -Identity | Out-Null
    }
}

Import-Module JobWorker
Initialize-JobWorker
