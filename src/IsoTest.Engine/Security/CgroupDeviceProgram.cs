using System.Buffers.Binary;

namespace IsoTest.Engine.Security;

/// <summary>
/// The cgroup v2 devices controller: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE, run by the kernel on
/// every open and mknod of a device node in the cgroup (as runc and crun make it). Its context is
/// <c>struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }</c>, access_type = access &lt;&lt; 16 | type;
/// it returns 1 to allow, 0 to deny (EPERM). Default deny; each allow rule is a short sequence of tests that
/// jumps to the next rule on the first mismatch.
/// </summary>
internal static class CgroupDeviceProgram
{
    // eBPF opcodes (linux/bpf.h, bpf_common.h).
    private const byte LdxMemW = 0x61;   // BPF_LDX | BPF_MEM | BPF_W
    private const byte Alu64AndK = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
    private const byte Alu64RshK = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
    private const byte Alu64MovX = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
    private const byte Alu64MovK = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
    private const byte JmpJneK = 0x55;   // BPF_JMP | BPF_JNE | BPF_K
    private const byte Exit = 0x95;      // BPF_JMP | BPF_EXIT

    /// <summary>BPF_DEVCG_DEV_BLOCK / BPF_DEVCG_DEV_CHAR: the low 16 bits of access_type.</summary>
    public const int TypeBlock = 1;

    /// <summary>BPF_DEVCG_DEV_CHAR.</summary>
    public const int TypeChar = 2;

    /// <summary>The program for <paramref name="rules"/>: struct bpf_insn[] (8 bytes each, little-endian).</summary>
    public static byte[] Build(IReadOnlyList<DeviceRule> rules)
    {
        var insns = new List<(byte Code, byte Dst, byte Src, short Off, int Imm)>
        {
            // r2 = type, r3 = access, r4 = major, r5 = minor (r1 = ctx).
            (LdxMemW, 2, 1, 0, 0),
            (Alu64AndK, 2, 0, 0, 0xFFFF),
            (LdxMemW, 3, 1, 0, 0),
            (Alu64RshK, 3, 0, 0, 16),
            (LdxMemW, 4, 1, 4, 0),
            (LdxMemW, 5, 1, 8, 0),
        };

        foreach (var rule in rules)
        {
            // Each test jumps over the rest of this rule when it fails: offsets are relative to the next insn.
            var block = new List<(byte, byte, byte, short, int)>();
            if (rule.Type != DeviceType.All)
            {
                block.Add((JmpJneK, 2, 0, 0, rule.Type == DeviceType.Block ? TypeBlock : TypeChar));
            }

            if (rule.Access != DeviceAccess.All)
            {
                // (access & ~allowed) != 0: something not granted was asked for.
                block.Add((Alu64MovX, 6, 3, 0, 0));
                block.Add((Alu64AndK, 6, 0, 0, ~(int)rule.Access & (int)DeviceAccess.All));
                block.Add((JmpJneK, 6, 0, 0, 0));
            }

            if (rule.Major is int major)
            {
                block.Add((JmpJneK, 4, 0, 0, major));
            }

            if (rule.Minor is int minor)
            {
                block.Add((JmpJneK, 5, 0, 0, minor));
            }

            block.Add((Alu64MovK, 0, 0, 0, 1));
            block.Add((Exit, 0, 0, 0, 0));
            for (var i = 0; i < block.Count; i++)
            {
                var (code, dst, src, _, imm) = block[i];
                insns.Add(code == JmpJneK ? (code, dst, src, (short)(block.Count - i - 1), imm) : block[i]);
            }
        }

        insns.Add((Alu64MovK, 0, 0, 0, 0));
        insns.Add((Exit, 0, 0, 0, 0));

        var bytes = new byte[insns.Count * 8];
        for (var i = 0; i < insns.Count; i++)
        {
            var (code, dst, src, off, imm) = insns[i];
            var at = bytes.AsSpan(i * 8);
            at[0] = code;
            at[1] = (byte)((src << 4) | dst);
            BinaryPrimitives.WriteInt16LittleEndian(at[2..], off);
            BinaryPrimitives.WriteInt32LittleEndian(at[4..], imm);
        }

        return bytes;
    }
}
