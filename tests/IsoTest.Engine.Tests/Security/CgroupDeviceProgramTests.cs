using System.Buffers.Binary;
using IsoTest.Engine.Security;

namespace IsoTest.Engine.Tests.Security;

/// <summary>The cgroup v2 device program, run through an eBPF interpreter against the rule list it was built from.</summary>
public sealed class CgroupDeviceProgramTests
{
    private static readonly byte[] Program = CgroupDeviceProgram.Build(DeviceRules.DockerDefault);

    [Theory]
    [InlineData(DeviceType.Char, 1, 3, DeviceAccess.Read | DeviceAccess.Write, true)]   // /dev/null
    [InlineData(DeviceType.Char, 1, 9, DeviceAccess.Read, true)]                        // /dev/urandom
    [InlineData(DeviceType.Char, 136, 7, DeviceAccess.All, true)]                       // /dev/pts/7
    [InlineData(DeviceType.Char, 10, 200, DeviceAccess.Read | DeviceAccess.Write, true)] // /dev/net/tun
    [InlineData(DeviceType.Block, 7, 0, DeviceAccess.Mknod, true)]                      // mknod is allowed...
    [InlineData(DeviceType.Block, 7, 0, DeviceAccess.Read | DeviceAccess.Write, false)] // ...opening loop0 is not
    [InlineData(DeviceType.Block, 8, 0, DeviceAccess.Read, false)]                      // sda
    [InlineData(DeviceType.Char, 1, 1, DeviceAccess.Read, false)]                       // /dev/mem
    [InlineData(DeviceType.Char, 10, 232, DeviceAccess.Read, false)]                    // kvm
    [InlineData(DeviceType.Char, 4, 1, DeviceAccess.Write, false)]                      // tty1
    [InlineData(DeviceType.Char, 1, 3, DeviceAccess.Mknod | DeviceAccess.Read, true)]
    [InlineData(DeviceType.Block, 1, 3, DeviceAccess.Read, false)]                      // right numbers, wrong type
    public void Program_DecidesAsTheRules(object typeValue, int major, int minor, object accessValue, bool allowed)
    {
        // object: the enums are internal, xunit passes them through as they are.
        var (type, access) = ((DeviceType)typeValue, (DeviceAccess)accessValue);
        Assert.Equal(allowed, DeviceRules.Allows(DeviceRules.DockerDefault, type, major, minor, access));
        Assert.Equal(allowed ? 1UL : 0UL, Run(Program, type, major, minor, access));
    }

    [Fact]
    public void Program_AgreesWithTheRulesOnEveryCombination()
    {
        var runs = 0;
        foreach (var type in (DeviceType[])[DeviceType.Char, DeviceType.Block])
        {
            foreach (var major in (int[])[0, 1, 4, 5, 7, 8, 10, 136, 254])
            {
                foreach (var minor in (int[])[0, 1, 2, 3, 5, 7, 8, 9, 200, 232])
                {
                    for (var access = 1; access <= 7; access++)
                    {
                        var expected = DeviceRules.Allows(DeviceRules.DockerDefault, type, major, minor, (DeviceAccess)access);
                        Assert.True((expected ? 1UL : 0UL) == Run(Program, type, major, minor, (DeviceAccess)access), $"{type} {major}:{minor} {(DeviceAccess)access}");
                        runs++;
                    }
                }
            }
        }

        Assert.Equal(2 * 9 * 10 * 7, runs);
    }

    [Fact]
    public void CgroupV1Text_IsDockersList()
    {
        Assert.Equal(
            ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"],
            DeviceRules.DockerDefault.Select(r => r.ToCgroupV1()));
    }

    /// <summary>
    /// The eBPF instructions the program uses, as the kernel executes them: 64-bit registers, ctx in r1, forward
    /// jumps relative to the next instruction, r0 at exit.
    /// </summary>
    private static ulong Run(byte[] program, DeviceType type, int major, int minor, DeviceAccess access)
    {
        var ctx = new byte[12];
        var typeBits = type == DeviceType.Block ? CgroupDeviceProgram.TypeBlock : CgroupDeviceProgram.TypeChar;
        BinaryPrimitives.WriteUInt32LittleEndian(ctx, ((uint)access << 16) | (uint)typeBits);
        BinaryPrimitives.WriteUInt32LittleEndian(ctx.AsSpan(4), (uint)major);
        BinaryPrimitives.WriteUInt32LittleEndian(ctx.AsSpan(8), (uint)minor);
        var r = new ulong[11];
        var count = program.Length / 8;
        for (var pc = 0; pc < count; pc++)
        {
            var at = program.AsSpan(pc * 8);
            var code = at[0];
            var dst = at[1] & 0xF;
            var src = at[1] >> 4;
            var off = BinaryPrimitives.ReadInt16LittleEndian(at[2..]);
            var imm = BinaryPrimitives.ReadInt32LittleEndian(at[4..]);
            switch (code)
            {
                case 0x61: // ldxw dst, [src + off]: only ctx (r1) is readable
                    Assert.Equal(1, src);
                    Assert.InRange(off, 0, 8);
                    r[dst] = BinaryPrimitives.ReadUInt32LittleEndian(ctx.AsSpan(off));
                    break;
                case 0x57: r[dst] &= (ulong)(long)imm; break;
                case 0x77: r[dst] >>= imm; break;
                case 0xbf: r[dst] = r[src]; break;
                case 0xb7: r[dst] = (ulong)(long)imm; break;
                case 0x55:
                    if (r[dst] != (ulong)(long)imm)
                    {
                        Assert.True(off >= 0, "backward jump");
                        pc += off;
                    }

                    break;
                case 0x95: return r[0];
                default: throw new InvalidOperationException($"opcode 0x{code:x2} at {pc}");
            }

            Assert.True(pc + 1 <= count, "jump past the end");
        }

        throw new InvalidOperationException("ran off the end");
    }
}
