using System.Collections.Frozen;

namespace IsoTest.Engine.Security;

/// <summary>The architectures a filter can be compiled for: the kernel's AUDIT_ARCH_* and libseccomp's names.</summary>
internal enum SeccompArch
{
    X86_64,
    X32,
    I386,
    Aarch64,
}

/// <summary>Syscall numbers by name, per architecture (SyscallTable.g.cs is generated from the kernel headers).</summary>
internal static partial class SyscallTable
{
    /// <summary>AUDIT_ARCH_X86_64 (EM_X86_64 | 64-bit | little-endian); x32 shares it and sets bit 30 of the number.</summary>
    public const uint AuditArchX86_64 = 0xC000003E;

    /// <summary>AUDIT_ARCH_I386.</summary>
    public const uint AuditArchI386 = 0x40000003;

    /// <summary>AUDIT_ARCH_AARCH64.</summary>
    public const uint AuditArchAarch64 = 0xC00000B7;

    /// <summary>__X32_SYSCALL_BIT: x32 syscalls enter through the x86_64 entry with this bit set.</summary>
    public const uint X32SyscallBit = 0x40000000;

    // Lazy: static fields of the two partial files initialise in an order C# does not define across files.
    private static readonly Lazy<FrozenDictionary<SeccompArch, FrozenDictionary<string, int>>> Tables = new(() => new Dictionary<SeccompArch, FrozenDictionary<string, int>>
    {
        [SeccompArch.X86_64] = X86_64Entries.ToFrozenDictionary(e => e.Name, e => e.Number, StringComparer.Ordinal),
        [SeccompArch.X32] = X32Entries.ToFrozenDictionary(e => e.Name, e => e.Number, StringComparer.Ordinal),
        [SeccompArch.I386] = I386Entries.ToFrozenDictionary(e => e.Name, e => e.Number, StringComparer.Ordinal),
        [SeccompArch.Aarch64] = Aarch64Entries.ToFrozenDictionary(e => e.Name, e => e.Number, StringComparer.Ordinal),
    }.ToFrozenDictionary());

    /// <summary>The syscall's number on <paramref name="arch"/>, or null when that architecture has no such syscall.</summary>
    public static int? Number(SeccompArch arch, string name) => Tables.Value[arch].TryGetValue(name, out var n) ? n : null;

    /// <summary>Every (name, number) of <paramref name="arch"/>.</summary>
    public static IReadOnlyDictionary<string, int> All(SeccompArch arch) => Tables.Value[arch];

    /// <summary>The profile's name of an architecture (SCMP_ARCH_*).</summary>
    public static string ScmpName(SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 => "SCMP_ARCH_X86_64",
        SeccompArch.X32 => "SCMP_ARCH_X32",
        SeccompArch.I386 => "SCMP_ARCH_X86",
        _ => "SCMP_ARCH_AARCH64",
    };

    /// <summary>libseccomp's short name, which <c>includes.arches</c> and <c>excludes.arches</c> use.</summary>
    public static string NativeName(SeccompArch arch) => arch switch
    {
        SeccompArch.X86_64 => "amd64",
        SeccompArch.X32 => "x32",
        SeccompArch.I386 => "x86",
        _ => "arm64",
    };

    /// <summary>The architecture this process runs on, or null when the engine has no table for it.</summary>
    public static SeccompArch? Native => System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => SeccompArch.X86_64,
        System.Runtime.InteropServices.Architecture.Arm64 => SeccompArch.Aarch64,
        _ => null,
    };
}
