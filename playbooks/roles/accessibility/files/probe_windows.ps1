# Read-only probe of the assistive technology on a Windows laptop, run by ansible.windows.win_powershell
# (Windows PowerShell 5.1). It only collects; filter_plugins/df_windows_at.py decides what works.
#
# $Ansible.Result = @{
#   uninstall = @(@{ key; view; display_name; display_version; publisher; install_location }, ...)
#   files     = @{ '<pattern>' = @(@{ path; version }, ...) }     # empty list when nothing matches
#   ats       = @('nvda_nvda_v1', 'MagnifierPane', ...)               # Ease of Access registrations
#   evidence  = @{ '<path>' = $true | $false }                        # licence evidence present?
#   errors    = @('<what could not be read>: <message>')
# }
[CmdletBinding()]
param(
    [string[]]$Files = @(),
    [string[]]$Evidence = @()
)

# Stop on every error so that nothing is silently skipped; each read below catches its own and
# reports it in errors, which fails the QA with the reason instead of passing on partial data.
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false
$errors = [System.Collections.Generic.List[string]]::new()

function Get-UninstallEntry {
    # Both registry views, whatever the bitness of this PowerShell: a 32-bit installer (NVDA up to
    # 2025.x, Dragon) registers under WOW6432Node, a 64-bit one (JAWS, ZoomText) under the native key.
    foreach ($view in [Microsoft.Win32.RegistryView]::Registry64, [Microsoft.Win32.RegistryView]::Registry32) {
        $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::LocalMachine, $view)
        $root = $base.OpenSubKey('SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall')
        if ($null -eq $root) { continue }
        foreach ($name in $root.GetSubKeyNames()) {
            $key = $root.OpenSubKey($name)
            if ($null -eq $key -or -not $key.GetValue('DisplayName')) { continue }
            $location = $key.GetValue('InstallLocation')
            if (-not $location) { $location = $key.GetValue('InstallDir') }
            @{
                key              = $name
                view             = [string]$view
                display_name     = [string]$key.GetValue('DisplayName')
                display_version  = [string]$key.GetValue('DisplayVersion')
                publisher        = [string]$key.GetValue('Publisher')
                install_location = [string]$location
            }
        }
    }
}

function Find-ProgramFile([string]$Pattern) {
    # Patterns carry environment variables (%ProgramFiles%, %ProgramFiles(x86)%) and wildcards for the
    # versioned folders (JAWS\2025\jfw.exe); expanded here so that a system drive other than C: works.
    $expanded = [Environment]::ExpandEnvironmentVariables($Pattern)
    $found = @(Get-ChildItem -Path $expanded -File -ErrorAction SilentlyContinue)
    , @($found | ForEach-Object { @{ path = $_.FullName; version = [string]$_.VersionInfo.FileVersion } })
}

function Get-RegisteredAt {
    # Ease of Access ATs (HKLM\...\Accessibility\ATs\<name>): what Windows can start at sign-in.
    $base = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::LocalMachine, [Microsoft.Win32.RegistryView]::Registry64)
    $ats = $base.OpenSubKey('SOFTWARE\Microsoft\Windows NT\CurrentVersion\Accessibility\ATs')
    if ($null -eq $ats) { return , @() }
    , @($ats.GetSubKeyNames())
}

function Test-Evidence([string]$Path) {
    # A registry value is written "HKLM:\Key\Path!ValueName"; anything else is a file or registry key path.
    if ($Path -match '^(HK[A-Z]+:\\.+)!(.+)$') {
        $item = Get-ItemProperty -LiteralPath $Matches[1] -Name $Matches[2] -ErrorAction SilentlyContinue
        return ($null -ne $item) -and [bool]("$($item.($Matches[2]))")
    }
    Test-Path -LiteralPath ([Environment]::ExpandEnvironmentVariables($Path))
}

$result = @{ uninstall = @(); files = @{}; ats = @(); evidence = @{}; errors = @() }
try { $result.uninstall = @(Get-UninstallEntry) } catch { $errors.Add("uninstall entries: $($_.Exception.Message)") }
try { $result.ats = Get-RegisteredAt } catch { $errors.Add("Ease of Access registrations: $($_.Exception.Message)") }
foreach ($pattern in $Files) {
    try { $result.files[$pattern] = Find-ProgramFile $pattern } catch { $errors.Add("${pattern}: $($_.Exception.Message)") }
}
foreach ($path in $Evidence) {
    try { $result.evidence[$path] = [bool](Test-Evidence $path) } catch { $errors.Add("${path}: $($_.Exception.Message)") }
}
$result.errors = @($errors)
$Ansible.Result = $result
