using System.Buffers.Binary;

namespace IsoTest.Engine.Tests.Security;

/// <summary>
/// Runs a seccomp cBPF program the way the kernel's interpreter does, for the instructions a seccomp filter may use
/// (loads of seccomp_data words, ALU with constants, jumps, returns), and checks what the kernel's checker checks:
/// no jump past the end, no load outside seccomp_data, the program ends in a return.
/// </summary>
internal static class ClassicBpfInterpreter
{
    /// <summary>The return value for a syscall <paramref name="nr"/> on audit arch <paramref name="arch"/> with <paramref name="args"/>.</summary>
    public static uint Run(byte[] program, int nr, uint arch, params ulong[] args)
    {
        var data = new byte[64];
        BinaryPrimitives.WriteInt32LittleEndian(data, nr);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(4), arch);
        for (var i = 0; i < args.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16 + (8 * i)), args[i]);
        }

        var count = program.Length / 8;
        uint a = 0, x = 0;
        var mem = new uint[16];
        for (var pc = 0; pc < count; pc++)
        {
            var at = pc * 8;
            var code = BinaryPrimitives.ReadUInt16LittleEndian(program.AsSpan(at));
            var jt = program[at + 2];
            var jf = program[at + 3];
            var k = BinaryPrimitives.ReadUInt32LittleEndian(program.AsSpan(at + 4));
            int Target(int offset) => pc + offset < count ? pc + offset : throw new InvalidOperationException($"jump past the end at {pc}");
            switch (code)
            {
                case 0x20: // ld [k]
                    if (k > 60 || k % 4 != 0)
                    {
                        throw new InvalidOperationException($"load outside seccomp_data at {pc}: {k}");
                    }

                    a = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan((int)k));
                    break;
                case 0x00: a = k; break;                 // ld #k
                case 0x01: x = k; break;                 // ldx #k
                case 0x02: mem[k] = a; break;            // st
                case 0x60: a = mem[k]; break;            // ld M[k]
                case 0x54: a &= k; break;                // and #k
                case 0x44: a |= k; break;                // or #k
                case 0x04: a += k; break;                // add #k
                case 0x07: x = a; break;                 // tax
                case 0x87: a = x; break;                 // txa
                case 0x05: pc = Target((int)k + 1) - 1; break; // ja
                case 0x15: pc = Target((a == k ? jt : jf) + 1) - 1; break;
                case 0x25: pc = Target((a > k ? jt : jf) + 1) - 1; break;
                case 0x35: pc = Target((a >= k ? jt : jf) + 1) - 1; break;
                case 0x45: pc = Target(((a & k) != 0 ? jt : jf) + 1) - 1; break;
                case 0x06: return k;                     // ret #k
                case 0x16: return a;                     // ret a
                default: throw new InvalidOperationException($"opcode 0x{code:x} at {pc} is not one a seccomp filter uses");
            }
        }

        throw new InvalidOperationException("the program ran off its end without returning");
    }
}
