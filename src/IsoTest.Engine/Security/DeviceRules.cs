using System.Globalization;

namespace IsoTest.Engine.Security;

/// <summary>Which device nodes a rule covers: char, block, or all.</summary>
internal enum DeviceType
{
    All,
    Char,
    Block,
}

/// <summary>What a device rule permits on the nodes it covers.</summary>
[Flags]
internal enum DeviceAccess
{
    None = 0,
    Mknod = 1,
    Read = 2,
    Write = 4,
    All = Mknod | Read | Write,
}

/// <summary>One allow rule: a device type, major and minor (null = any), and the access it grants.</summary>
internal sealed record DeviceRule(DeviceType Type, int? Major, int? Minor, DeviceAccess Access)
{
    /// <summary>The rule as the v1 devices controller writes it: <c>c 1:3 rwm</c>.</summary>
    public string ToCgroupV1() => string.Create(CultureInfo.InvariantCulture,
        $"{Type switch { DeviceType.Char => 'c', DeviceType.Block => 'b', _ => 'a' }} {Num(Major)}:{Num(Minor)} {(Access.HasFlag(DeviceAccess.Read) ? "r" : "")}{(Access.HasFlag(DeviceAccess.Write) ? "w" : "")}{(Access.HasFlag(DeviceAccess.Mknod) ? "m" : "")}");

    private static string Num(int? n) => n?.ToString(CultureInfo.InvariantCulture) ?? "*";
}

/// <summary>
/// The devices a container may use: deny everything, then allow Docker's list (moby daemon/pkg/oci/defaults.go).
/// mknod of any node is allowed because Docker's default capabilities keep CAP_MKNOD, but opening one needs a
/// rule below: a node made for the host's disk cannot be read or written.
/// </summary>
internal static class DeviceRules
{
    public static IReadOnlyList<DeviceRule> DockerDefault { get; } =
    [
        new(DeviceType.Char, null, null, DeviceAccess.Mknod),
        new(DeviceType.Block, null, null, DeviceAccess.Mknod),
        new(DeviceType.Char, 1, 3, DeviceAccess.All),    // /dev/null
        new(DeviceType.Char, 1, 5, DeviceAccess.All),    // /dev/zero
        new(DeviceType.Char, 1, 7, DeviceAccess.All),    // /dev/full
        new(DeviceType.Char, 1, 8, DeviceAccess.All),    // /dev/random
        new(DeviceType.Char, 1, 9, DeviceAccess.All),    // /dev/urandom
        new(DeviceType.Char, 5, 0, DeviceAccess.All),    // /dev/tty
        new(DeviceType.Char, 5, 1, DeviceAccess.All),    // /dev/console
        new(DeviceType.Char, 5, 2, DeviceAccess.All),    // /dev/ptmx
        new(DeviceType.Char, 136, null, DeviceAccess.All), // /dev/pts/*
        new(DeviceType.Char, 10, 200, DeviceAccess.All), // /dev/net/tun
    ];

    /// <summary>True when <paramref name="rules"/> allow <paramref name="access"/> to the node (the reference the BPF program must agree with).</summary>
    public static bool Allows(IReadOnlyList<DeviceRule> rules, DeviceType type, int major, int minor, DeviceAccess access) =>
        rules.Any(r => (r.Type == DeviceType.All || r.Type == type)
            && (r.Major is null || r.Major == major)
            && (r.Minor is null || r.Minor == minor)
            && (access & ~r.Access) == 0);
}
