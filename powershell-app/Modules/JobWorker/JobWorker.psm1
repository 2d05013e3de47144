# The job worker of the PowerShell app: the contract with the MCP handler
# (contracts/job-message.v1, job-record.v1 and manifest.v1 in the repository), kept in one
# module so run-job/run.ps1 and publish-manifest/run.ps1 stay one line each.
#
# Storage is reached over its REST API with Invoke-WebRequest: a bearer token from the app's
# managed identity in Azure, or Shared Key from a connection string (Azurite, local runs). That
# keeps the worker free of module dependencies and makes the ETag conditions (If-Match,
# If-None-Match) explicit, which the whole at-least-once design rests on.
#
# The handler's tests drive a stand-in worker (crates/handler/tests/common/worker.rs) that
# follows these same steps; change both together.

Set-StrictMode -Version 3.0

$script:ContractVersion = 1
$script:StorageVersion = '2023-11-03'
$script:Config = $null
$script:ConfigError = $null
# Kept apart from the rest of the settings so that a bad allow-list or module can still be
# recorded on the job it breaks.
$script:Storage = $null
$script:Token = $null
$script:MaxUpdateAttempts = 8

# --- settings ---------------------------------------------------------------------------------

function ConvertFrom-AllowList {
    # "Name[:effect[:tier]], ..." into an ordered, case-insensitive map name -> @{ Effect; Tier }.
    param([string] $Text)
    $allowed = [ordered]@{}
    foreach ($entry in ($Text -split ',') | ForEach-Object { $_.Trim() } | Where-Object { $_ }) {
        $parts = $entry -split ':'
        $name = $parts[0].Trim()
        $effect = if ($parts.Count -gt 1) { $parts[1].Trim().ToLowerInvariant() } else { 'write' }
        $tier = if ($parts.Count -gt 2) { $parts[2].Trim().ToLowerInvariant() } else { 'responder' }
        if ($parts.Count -gt 3 -or $name -notmatch '^[A-Za-z0-9_-]{1,125}$') {
            throw "PS_ALLOWED_FUNCTIONS entry '$entry' is not Name[:effect[:tier]] with a function name of letters, digits, - and _"
        }
        if ($effect -notin 'read', 'write', 'destructive') {
            throw "PS_ALLOWED_FUNCTIONS entry '$entry': effect '$effect' is not one of read, write, destructive"
        }
        if ($tier -notin 'reader', 'responder', 'admin') {
            throw "PS_ALLOWED_FUNCTIONS entry '$entry': tier '$tier' is not one of reader, responder, admin"
        }
        $allowed[$name] = @{ Effect = $effect; Tier = $tier }
    }
    $allowed
}

function Get-StorageSettings {
    # JOBS_STORAGE as a connection string, or the identity form JOBS_STORAGE__blobServiceUri.
    $connection = $env:JOBS_STORAGE
    if ($connection) {
        $values = @{}
        foreach ($pair in $connection -split ';' | Where-Object { $_ -match '=' }) {
            $key, $value = $pair -split '=', 2
            $values[$key.Trim()] = $value.Trim()
        }
        if ($values['UseDevelopmentStorage'] -eq 'true') {
            # The well-known Azurite development account (public, documented by Microsoft).
            return @{
                BlobEndpoint = 'http://127.0.0.1:10000/devstoreaccount1'
                Account      = 'devstoreaccount1'
                Key          = [Convert]::FromBase64String('Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==')
            }
        }
        if (-not $values['AccountName'] -or -not $values['AccountKey']) {
            throw 'JOBS_STORAGE is a connection string without AccountName and AccountKey; use one with them, or the identity settings JOBS_STORAGE__blobServiceUri and JOBS_STORAGE__credential=managedidentity'
        }
        $endpoint = $values['BlobEndpoint']
        if (-not $endpoint) {
            $protocol = if ($values['DefaultEndpointsProtocol']) { $values['DefaultEndpointsProtocol'] } else { 'https' }
            $suffix = if ($values['EndpointSuffix']) { $values['EndpointSuffix'] } else { 'core.windows.net' }
            $endpoint = "${protocol}://$($values['AccountName']).blob.$suffix"
        }
        return @{ BlobEndpoint = $endpoint.TrimEnd('/'); Account = $values['AccountName']; Key = [Convert]::FromBase64String($values['AccountKey']) }
    }
    $endpoint = ${env:JOBS_STORAGE__blobServiceUri}
    if (-not $endpoint -and ${env:JOBS_STORAGE__accountName}) {
        $endpoint = "https://${env:JOBS_STORAGE__accountName}.blob.core.windows.net"
    }
    if (-not $endpoint) {
        throw 'JOBS_STORAGE is not set: give a connection string, or JOBS_STORAGE__blobServiceUri (and __queueServiceUri, __credential=managedidentity, __clientId) for the managed identity'
    }
    @{ BlobEndpoint = $endpoint.TrimEnd('/'); ClientId = ${env:JOBS_STORAGE__clientId} }
}

function Import-JobModules {
    param([string] $Text)
    foreach ($module in ($Text -split ',') | ForEach-Object { $_.Trim() } | Where-Object { $_ }) {
        $path = Join-Path (Split-Path $PSScriptRoot -Parent | Split-Path -Parent) $module
        if ($module.EndsWith('.ps1')) {
            # A script of functions (SentinelManager.ps1): loaded as a module so its functions
            # are found by name and its variables stay its own.
            $name = [IO.Path]::GetFileNameWithoutExtension($module)
            New-Module -Name $name -ScriptBlock ([scriptblock]::Create((Get-Content -LiteralPath $path -Raw))) | Import-Module -Global
        }
        elseif (Test-Path -LiteralPath $path) {
            Import-Module -Name $path -Global
        }
        else {
            Import-Module -Name $module -Global
        }
    }
}

function Initialize-JobWorker {
    <#
    .SYNOPSIS
    Reads the worker's settings and imports PS_MODULES; called once per worker from profile.ps1.
    #>
    try {
        $storage = Get-StorageSettings
        $storage.Container = if ($env:JOBS_CONTAINER) { $env:JOBS_CONTAINER } else { 'jobs' }
        $script:Storage = $storage
        $allowList = ConvertFrom-AllowList $env:PS_ALLOWED_FUNCTIONS
        Import-JobModules $env:PS_MODULES
        $script:Config = @{
            AllowList       = $allowList
            TenantParameter = if ($env:PS_TENANT_PARAMETER) { $env:PS_TENANT_PARAMETER } else { 'TenantId' }
        }
        $script:ConfigError = $null
        Write-Information "job worker ready: $($allowList.Count) allowed function(s), container $($storage.Container), queue $($env:PS_JOBS_QUEUE)" -InformationAction Continue
    }
    catch {
        $script:ConfigError = "the PowerShell job worker is misconfigured: $($_.Exception.Message)"
        Write-Error $script:ConfigError -ErrorAction Continue
    }
}

function Get-JobWorkerConfig {
    if ($script:ConfigError) { throw $script:ConfigError }
    if (-not $script:Config) { throw 'the PowerShell job worker was not initialized: profile.ps1 must run Initialize-JobWorker' }
    $script:Config
}

function Get-JobStorage {
    if (-not $script:Storage) {
        if ($script:ConfigError) { throw $script:ConfigError }
        throw 'the PowerShell job worker was not initialized: profile.ps1 must run Initialize-JobWorker'
    }
    $script:Storage
}

# --- storage ----------------------------------------------------------------------------------

function Format-JobTime {
    # Every time the contract holds: UTC, RFC 3339 with seven fractional digits.
    param($Value)
    if ($null -eq $Value) { return $null }
    $when = if ($Value -is [string]) { [DateTimeOffset]::Parse($Value, [Globalization.CultureInfo]::InvariantCulture) } else { [DateTimeOffset]$Value }
    $when.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", [Globalization.CultureInfo]::InvariantCulture)
}

function Get-StorageToken {
    param([string] $ClientId)
    if ($script:Token -and $script:Token.ExpiresOn -gt [DateTimeOffset]::UtcNow.AddMinutes(5)) {
        return $script:Token.Value
    }
    $uri = "$($env:IDENTITY_ENDPOINT)?resource=https://storage.azure.com/&api-version=2019-08-01"
    if ($ClientId) { $uri += "&client_id=$ClientId" }
    $response = Invoke-RestMethod -Uri $uri -Headers @{ 'X-IDENTITY-HEADER' = $env:IDENTITY_HEADER } -Method Get
    $script:Token = @{ Value = $response.access_token; ExpiresOn = [DateTimeOffset]::FromUnixTimeSeconds([long]$response.expires_on) }
    $script:Token.Value
}

function Invoke-BlobRequest {
    # One Blob REST call. Returns @{ Status; ETag; Content } for 2xx and for the statuses the
    # caller expects (404, 409, 412); throws for anything else.
    param(
        [Parameter(Mandatory)][string] $Method,
        [Parameter(Mandatory)][string] $Path,
        [string] $Query = '',
        [byte[]] $Body = $null,
        [hashtable] $Headers = @{}
    )
    $settings = Get-JobStorage
    $uri = "$($settings.BlobEndpoint)/$Path$Query"
    $headers = @{ 'x-ms-version' = $script:StorageVersion; 'x-ms-date' = [DateTime]::UtcNow.ToString('R') } + $Headers
    $contentType = ''
    if ($null -ne $Body) {
        $contentType = 'application/json'
        $headers['x-ms-blob-type'] = 'BlockBlob'
    }
    if ($settings.Key) {
        # Shared Key: https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key
        $length = if ($null -ne $Body -and $Body.Length -gt 0) { "$($Body.Length)" } else { '' }
        $canonicalHeaders = ($headers.Keys | Where-Object { $_ -like 'x-ms-*' } | ForEach-Object { $_.ToLowerInvariant() } | Sort-Object |
            ForEach-Object { $name = $_; "${name}:$($headers[$name])" }) -join "`n"
        $resource = "/$($settings.Account)$(([Uri]$uri).AbsolutePath)"
        if ($Query) {
            $pairs = $Query.TrimStart('?') -split '&' | ForEach-Object { $key, $value = $_ -split '=', 2; "$($key.ToLowerInvariant()):$([Uri]::UnescapeDataString($value))" }
            $resource += "`n" + (($pairs | Sort-Object) -join "`n")
        }
        $stringToSign = @(
            $Method, '', '', $length, '', $contentType, '', '',
            $(if ($headers['If-Match']) { $headers['If-Match'] } else { '' }),
            $(if ($headers['If-None-Match']) { $headers['If-None-Match'] } else { '' }),
            '', '', $canonicalHeaders, $resource
        ) -join "`n"
        $hmac = [Security.Cryptography.HMACSHA256]::new($settings.Key)
        $signature = [Convert]::ToBase64String($hmac.ComputeHash([Text.Encoding]::UTF8.GetBytes($stringToSign)))
        $headers['Authorization'] = "SharedKey $($settings.Account):$signature"
    }
    else {
        $headers['Authorization'] = "Bearer $(Get-StorageToken -ClientId $settings.ClientId)"
    }
    # ETags are quoted strings; skip the client-side header parsing that could reformat them.
    $request = @{ Uri = $uri; Method = $Method; Headers = $headers; SkipHttpErrorCheck = $true; SkipHeaderValidation = $true; UseBasicParsing = $true }
    if ($null -ne $Body) { $request.Body = $Body; $request.ContentType = $contentType }
    try {
        $response = Invoke-WebRequest @request
    }
    catch {
        throw "$Method $Path failed: $($_.Exception.Message)"
    }
    $status = [int]$response.StatusCode
    if (($status -ge 200 -and $status -lt 300) -or $status -in 404, 409, 412) {
        $etag = $response.Headers['ETag']
        $content = if ($response.Content -is [byte[]]) { [Text.Encoding]::UTF8.GetString($response.Content) } else { [string]$response.Content }
        return @{ Status = $status; ETag = $(if ($etag) { [string]($etag | Select-Object -First 1) } else { $null }); Content = $content }
    }
    $code = $response.Headers['x-ms-error-code'] | Select-Object -First 1
    throw "$Method $Path failed: HTTP $status $code"
}

function Get-JobBlob {
    # The blob as a hashtable and its ETag, or $null when there is none.
    param([Parameter(Mandatory)][string] $Name)
    $container = (Get-JobStorage).Container
    $response = Invoke-BlobRequest -Method GET -Path "$container/$Name"
    if ($response.Status -eq 404) { return $null }
    @{ Value = (ConvertFrom-JobJson $response.Content); ETag = $response.ETag }
}

function Set-JobBlob {
    # Writes JSON text; -IfMatch writes only over that version, -Create only if there is none.
    # Returns the new ETag, or $null when the condition failed (someone else wrote first).
    param([Parameter(Mandatory)][string] $Name, [Parameter(Mandatory)][string] $Json, [string] $IfMatch, [switch] $Create)
    $container = (Get-JobStorage).Container
    $headers = @{}
    if ($IfMatch) { $headers['If-Match'] = $IfMatch }
    if ($Create) { $headers['If-None-Match'] = '*' }
    $response = Invoke-BlobRequest -Method PUT -Path "$container/$Name" -Body ([Text.Encoding]::UTF8.GetBytes($Json)) -Headers $headers
    if ($response.Status -in 409, 412) { return $null }
    if ($response.Status -eq 404) { throw "container $container does not exist" }
    $response.ETag
}

function ConvertFrom-JobJson {
    # ConvertFrom-Json turns date-like strings into DateTime, which a [string] parameter would
    # then receive reformatted; PowerShell 7.5+ can keep them as text (-DateKind String).
    param([Parameter(Mandatory)][string] $Json)
    $options = @{ AsHashtable = $true; Depth = 100 }
    if ((Get-Command ConvertFrom-Json).Parameters.ContainsKey('DateKind')) { $options.DateKind = 'String' }
    ConvertFrom-Json -InputObject $Json @options
}

function ConvertTo-JobJson {
    param($Value)
    if ($null -eq $Value) { return 'null' }
    ConvertTo-Json -InputObject $Value -Depth 100 -Compress -EnumsAsStrings
}

function Update-JobRecord {
    # Reads records/<id>.json, lets $Change decide (it returns $true to write), and writes it
    # with the ETag it was read with; on a conflict it reads again and decides again.
    param([Parameter(Mandatory)][string] $JobId, [Parameter(Mandatory)][scriptblock] $Change)
    $name = "records/$JobId.json"
    for ($attempt = 1; $attempt -le $script:MaxUpdateAttempts; $attempt++) {
        $current = Get-JobBlob -Name $name
        if ($null -eq $current) { return $null }
        $record = $current.Value
        if (-not (& $Change $record)) { return $record }
        $record['updated'] = [DateTime]::UtcNow
        foreach ($field in 'created', 'deadline', 'updated', 'started', 'finished', 'cancel_requested') {
            if ($record.Contains($field)) { $record[$field] = Format-JobTime $record[$field] }
        }
        if (Set-JobBlob -Name $name -Json (ConvertTo-JobJson $record) -IfMatch $current.ETag) { return $record }
    }
    throw "records/$JobId.json kept changing during $script:MaxUpdateAttempts updates"
}

function Complete-JobRecord {
    # Moves a record to a final state; $false (no change) if it already is final.
    param([System.Collections.IDictionary] $Record, [string] $State, [string] $Code, [string] $Message)
    if ($Record['state'] -notin 'queued', 'running') { return $false }
    $Record['state'] = $State
    $Record['finished'] = [DateTime]::UtcNow
    $Record['error'] = if ($State -eq 'succeeded') { $null } else { [ordered]@{ code = $Code; message = $Message } }
    $true
}

# --- running a job ----------------------------------------------------------------------------

function ConvertTo-JobMessage {
    # The trigger hands over the message as text or, when it is JSON, already as a hashtable.
    param($Message)
    if ($Message -is [string]) { return (ConvertFrom-JobJson $Message) }
    if ($Message -is [System.Collections.IDictionary]) { return $Message }
    ConvertFrom-JobJson (ConvertTo-Json -InputObject $Message -Depth 100)
}

function Invoke-Job {
    <#
    .SYNOPSIS
    Runs one job message. Returns when the job is in a final state (or already was); throws,
    after noting the error on the record, for failures worth a redelivery.
    #>
    param([Parameter(Mandatory)] $Message, [int] $DequeueCount = 1)
    $job = ConvertTo-JobMessage $Message
    $jobId = [string]$job['job_id']
    if ($jobId -notmatch '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$') {
        throw 'the message has no job_id: it is not a job message'
    }
    try {
        Invoke-JobSteps -Job $job -JobId $jobId -DequeueCount $DequeueCount
    }
    catch {
        # Kept on the record so that a dead-lettered job can say why; then the host redelivers.
        $reason = $_.Exception.Message
        try {
            Update-JobRecord -JobId $jobId -Change { param($record) $record['last_attempt_error'] = $reason; $true } | Out-Null
        }
        catch {
            Write-Warning "job ${jobId}: the attempt's error could not be recorded either: $($_.Exception.Message)"
        }
        throw
    }
}

function Invoke-JobSteps {
    param([System.Collections.IDictionary] $Job, [string] $JobId, [int] $DequeueCount)
    $ErrorActionPreference = 'Stop'
    $config = Get-JobWorkerConfig
    $now = [DateTimeOffset]::UtcNow
    $state = @{ Decision = $null; Attempt = 0 }
    $command = Get-Command -Name $Job['function'] -CommandType Function -ErrorAction SilentlyContinue

    # 1. Decide from the record, not from the message: delivery is at-least-once.
    $record = Update-JobRecord -JobId $JobId -Change {
        param($record)
        $state.Decision = $null
        if ($record['state'] -notin 'queued', 'running') { return $false }
        if ($Job['version'] -ne $script:ContractVersion) {
            $state.Decision = @('failed', 'invalid_message', "the message has contract version $($Job['version']); this worker reads version $script:ContractVersion")
        }
        elseif ($record['cancel_requested']) {
            $state.Decision = @('cancelled', 'cancelled', 'cancelled while running; the interrupted attempt is not retried')
        }
        elseif ($record['state'] -eq 'queued' -and $now -gt [DateTimeOffset]$record['deadline']) {
            $state.Decision = @('failed', 'deadline_passed', 'the job reached the worker after its deadline')
        }
        elseif ($record['state'] -eq 'running' -and -not $Job['retry_interrupted']) {
            $state.Decision = @('failed', 'interrupted', 'an earlier attempt started and did not finish; the function is destructive, so it is not run again')
        }
        elseif (-not $config.AllowList.Contains($Job['function']) -or -not $command) {
            $state.Decision = @('failed', 'not_allowed', "$($Job['function']) is not on this worker's allow-list (PS_ALLOWED_FUNCTIONS) or not defined by PS_MODULES")
        }
        if ($state.Decision) {
            return (Complete-JobRecord $record $state.Decision[0] $state.Decision[1] $state.Decision[2])
        }
        $record['state'] = 'running'
        if (-not $record['started']) { $record['started'] = $now }
        $record['attempts'] = [int]$record['attempts'] + 1
        $state.Attempt = $record['attempts']
        $true
    }
    if ($null -eq $record) {
        # Not queued by the handler: leave a visible, failed record rather than run it.
        $orphan = [ordered]@{
            version = $script:ContractVersion; job_id = $JobId; kind = 'powershell'; function = $Job['function']
            tenant_id = $Job['tenant_id']; caller = $Job['caller']; state = 'failed'
            created = Format-JobTime $Job['created']; deadline = Format-JobTime $Job['deadline']; updated = Format-JobTime $now
            started = $null; finished = Format-JobTime $now; attempts = 0; cancel_requested = $null
            error = [ordered]@{ code = 'invalid_message'; message = 'the message has no job record; it was not queued by the handler' }
            last_attempt_error = $null; parameters_blob = $Job['parameters_blob']; result = $null
        }
        Set-JobBlob -Name "records/$JobId.json" -Json (ConvertTo-JobJson $orphan) -Create | Out-Null
        return
    }
    if ($state.Decision -or $state.Attempt -eq 0) {
        Write-Information "job $JobId is $($record['state']); not run (delivery $DequeueCount)" -InformationAction Continue
        return
    }

    # 2. Parameters: inline, or from the blob the message names; the tenant parameter is always
    #    the job's tenant, which the handler checked against its allow-list.
    $parameters = $null
    if ($Job.Contains('parameters')) {
        $parameters = $Job['parameters']
    }
    elseif ($Job['parameters_blob']) {
        $blob = Get-JobBlob -Name $Job['parameters_blob']
        if ($blob) { $parameters = $blob.Value }
    }
    if ($null -eq $parameters) {
        Update-JobRecord -JobId $JobId -Change { param($record) Complete-JobRecord $record 'failed' 'invalid_message' 'the message has no parameters, or its parameters blob is missing' } | Out-Null
        return
    }
    if ($command.Parameters.ContainsKey($config.TenantParameter)) {
        $parameters[$config.TenantParameter] = $Job['tenant_id']
    }
    if ($command.CmdletBinding) {
        # Preference variables do not reach functions of other modules; the common parameter does.
        $parameters['ErrorAction'] = 'Stop'
    }

    # 3. Run. An error from the function is the job's outcome, not a reason to redeliver.
    Write-Information "job $JobId runs $($Job['function']) for tenant $($Job['tenant_id']) (attempt $($state.Attempt), delivery $DequeueCount)" -InformationAction Continue
    try {
        $output = @(& $command @parameters)
        $json = ConvertTo-JobJson $(if ($output.Count -eq 1) { $output[0] } elseif ($output.Count -eq 0) { $null } else { $output })
    }
    catch {
        $failure = $_.Exception.Message
        Update-JobRecord -JobId $JobId -Change { param($record) Complete-JobRecord $record 'failed' 'function_failed' $failure } | Out-Null
        return
    }

    # 4. The result first, then the record that points at it.
    $resultName = "results/$JobId.json"
    Set-JobBlob -Name $resultName -Json $json | Out-Null
    $bytes = [Text.Encoding]::UTF8.GetByteCount($json)
    Update-JobRecord -JobId $JobId -Change {
        param($record)
        $record['result'] = [ordered]@{ blob = $resultName; bytes = $bytes }
        Complete-JobRecord $record 'succeeded' $null $null
    } | Out-Null
}

# --- the manifest -----------------------------------------------------------------------------

function ConvertTo-JsonType {
    # The JSON type a parameter of this .NET type accepts, and the element type of arrays.
    param([Type] $Type)
    if ($Type.IsArray) {
        return @('array', (ConvertTo-JsonType $Type.GetElementType())[0])
    }
    $name = if ($Type.IsEnum) { 'enum' } else { $Type.FullName }
    $kind = switch ($name) {
        { $_ -in 'System.Int16', 'System.Int32', 'System.Int64', 'System.Byte', 'System.SByte', 'System.UInt16', 'System.UInt32', 'System.UInt64' } { 'integer' }
        { $_ -in 'System.Single', 'System.Double', 'System.Decimal' } { 'number' }
        { $_ -in 'System.Boolean', 'System.Management.Automation.SwitchParameter' } { 'boolean' }
        { $_ -in 'System.Collections.Hashtable', 'System.Collections.IDictionary', 'System.Collections.Specialized.OrderedDictionary' } { 'object' }
        default { 'string' }
    }
    @($kind, $null)
}

function New-JobManifest {
    <#
    .SYNOPSIS
    Describes the allowed functions from Get-Command and their comment-based help.
    #>
    $config = Get-JobWorkerConfig
    $common = [Management.Automation.PSCmdlet]::CommonParameters + [Management.Automation.PSCmdlet]::OptionalCommonParameters
    $functions = foreach ($name in $config.AllowList.Keys) {
        $command = Get-Command -Name $name -CommandType Function -ErrorAction SilentlyContinue
        if (-not $command) {
            Write-Warning "PS_ALLOWED_FUNCTIONS names $name, which no module in PS_MODULES defines; it is left out of the manifest"
            continue
        }
        $help = Get-Help -Name $name -Full -ErrorAction SilentlyContinue
        # Without comment-based help, Get-Help makes a synopsis from the syntax: not worth showing.
        $synopsis = if ($help -and $help.Synopsis -and -not $help.Synopsis.TrimStart().StartsWith($name)) { $help.Synopsis.Trim() } else { $null }
        $description = if ($help -and $help.PSObject.Properties['description'] -and $help.description) { (@($help.description | ForEach-Object Text) -join "`n").Trim() } else { $null }
        $parameters = foreach ($parameter in $command.Parameters.Values) {
            if ($parameter.Name -in $common) { continue }
            $sets = @($parameter.ParameterSets.Values)
            $kind, $items = ConvertTo-JsonType $parameter.ParameterType
            $validateSet = @($parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.ValidateSetAttribute] } | ForEach-Object { $_.ValidValues })
            $parameterHelp = $null
            if ($help -and $help.PSObject.Properties['parameters'] -and $help.parameters) {
                $entry = @($help.parameters.parameter) | Where-Object { $_.name -eq $parameter.Name } | Select-Object -First 1
                if ($entry -and $entry.PSObject.Properties['description'] -and $entry.description) {
                    $parameterHelp = (@($entry.description | ForEach-Object Text) -join ' ').Trim()
                }
            }
            [ordered]@{
                name         = $parameter.Name
                type         = $kind
                items        = $items
                ps_type      = $parameter.ParameterType.FullName
                # Mandatory only if it is in every parameter set it belongs to.
                mandatory    = ($sets.Count -gt 0 -and -not ($sets | Where-Object { -not $_.IsMandatory }))
                validate_set = [string[]]$validateSet
                help         = $(if ($parameterHelp) { $parameterHelp } else { $null })
            }
        }
        $allowed = $config.AllowList[$name]
        [ordered]@{
            name             = $command.Name
            module           = $(if ($command.ModuleName) { $command.ModuleName } else { $null })
            synopsis         = $synopsis
            description      = $(if ($description) { $description } else { $null })
            effect           = $allowed.Effect
            tier             = $allowed.Tier
            tenant_parameter = $(if ($command.Parameters.ContainsKey($config.TenantParameter)) { $config.TenantParameter } else { $null })
            parameters       = @($parameters)
        }
    }
    [ordered]@{ version = $script:ContractVersion; generated = Format-JobTime ([DateTime]::UtcNow); functions = @($functions) }
}

function Publish-JobManifest {
    <#
    .SYNOPSIS
    Writes powershell/manifest.json when the functions it describes changed.
    #>
    # The container may not exist yet when no job was ever queued (409: it does).
    Invoke-BlobRequest -Method PUT -Path (Get-JobStorage).Container -Query '?restype=container' | Out-Null
    $manifest = New-JobManifest
    $name = 'powershell/manifest.json'
    $current = Get-JobBlob -Name $name
    if ($current -and (ConvertTo-JobJson $current.Value['functions']) -eq (ConvertTo-JobJson $manifest['functions'])) {
        Write-Information "manifest unchanged ($($manifest['functions'].Count) function(s))" -InformationAction Continue
        return
    }
    Set-JobBlob -Name $name -Json (ConvertTo-JobJson $manifest) | Out-Null
    Write-Information "manifest published: $(@($manifest['functions'] | ForEach-Object { $_['name'] }) -join ', ')" -InformationAction Continue
}

Export-ModuleMember -Function Initialize-JobWorker, Invoke-Job, Publish-JobManifest, New-JobManifest
