using System.Collections.Concurrent;
using IsoTest.Seccomp;

namespace IsoTest.Engine.Security;

/// <summary>
/// The filter each container gets, compiled once per (profile, architecture, capability set) and cached: a test
/// suite starts thousands of containers with the same profile. The kernel and the architecture are this machine's.
/// </summary>
internal static class SeccompFilters
{
    private const string DefaultResource = "IsoTest.Engine.Security.default-seccomp.json";

    private static readonly Lazy<SeccompDocument> DefaultProfile = new(LoadDefault);
    private static readonly ConcurrentDictionary<(string Profile, SeccompArch Arch, string Caps), SeccompProgram> Cache = new();

    /// <summary>Docker's default profile as the engine ships it (default-seccomp.json).</summary>
    public static SeccompDocument Default => DefaultProfile.Value;

    /// <summary>
    /// The filter for <paramref name="profile"/> with Docker's default capabilities on this machine; null for
    /// <see cref="SeccompProfile.Unconfined"/>. Throws <see cref="PlatformNotSupportedException"/> on an architecture
    /// the engine has no syscall table for.
    /// </summary>
    public static SeccompProgram? For(SeccompProfile profile) => For(profile, SeccompCompiler.DockerDefaultCapabilities);

    /// <summary>As <see cref="For(SeccompProfile)"/> with a given bounding capability set.</summary>
    public static SeccompProgram? For(SeccompProfile profile, IReadOnlySet<string> capabilities)
    {
        if (profile.IsUnconfined)
        {
            return null;
        }

        var arch = SyscallTable.Native ?? throw new PlatformNotSupportedException(
            $"The engine has seccomp syscall tables for x86_64 and aarch64 only, not {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}: use WithSeccompProfile(SeccompProfile.Unconfined) or the Docker backend.");
        var document = profile.IsDefault ? Default : profile.Document
            ?? throw new InvalidOperationException("The seccomp profile was not validated: build the spec with ContainerBuilder.");
        var key = (profile.IsDefault ? "" : profile.Json!, arch, string.Join(',', capabilities.Order(StringComparer.Ordinal)));
        return Cache.GetOrAdd(key, _ => SeccompCompiler.Compile(document, arch, capabilities, SeccompCompiler.RunningKernel()));
    }

    private static SeccompDocument LoadDefault()
    {
        using var stream = typeof(SeccompFilters).Assembly.GetManifestResourceStream(DefaultResource)
            ?? throw new InvalidOperationException($"The engine assembly lacks its embedded {DefaultResource}: rebuild IsoTest.Engine.");
        using var reader = new StreamReader(stream);
        var errors = new List<string>();
        return SeccompDocument.Parse(reader.ReadToEnd(), "default-seccomp.json", errors)
            ?? throw new InvalidOperationException("The engine's default seccomp profile is invalid: " + string.Join("; ", errors));
    }
}
