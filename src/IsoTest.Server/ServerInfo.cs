using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace IsoTest.Server;

/// <summary>Facts about this server that /version and /info report.</summary>
internal static class ServerInfo
{
    /// <summary>IsoTest's version (the assembly's informational version, without the commit suffix).</summary>
    public static string Version { get; } =
        (typeof(ServerInfo).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "0.0.0").Split('+')[0];

    public static string Id { get; } = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));

    /// <summary>Docker's (Go's) architecture names.</summary>
    public static string GoArch { get; } = RuntimeInformation.OSArchitecture switch
    {
        Architecture.Arm64 => "arm64",
        Architecture.X64 => "amd64",
        var other => other.ToString().ToLowerInvariant(),
    };

    public static string KernelVersion { get; } = File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : "";

    public static string DataRoot { get; set; } = "";
}
