using System.Buffers.Binary;

namespace IsoTest.Engine.Security;

/// <summary>
/// Classic BPF (<c>struct sock_filter</c>) with symbolic labels. Conditional jumps reach at most 255 instructions
/// forward (8-bit jt/jf), so a jump whose target is farther becomes <c>jcond 0,1; ja T; ja F</c> (ja has 32 bits);
/// positions are recomputed until no jump changes form. Only forward jumps exist: the kernel's checker refuses
/// loops, and every label is placed after the jumps that name it.
/// </summary>
internal sealed class ClassicBpfAssembler
{
    // Opcodes (linux/bpf_common.h).
    public const ushort LdWAbs = 0x20;   // BPF_LD | BPF_W | BPF_ABS
    public const ushort JmpJa = 0x05;    // BPF_JMP | BPF_JA
    public const ushort JmpJeqK = 0x15;  // BPF_JMP | BPF_JEQ | BPF_K
    public const ushort JmpJgtK = 0x25;  // BPF_JMP | BPF_JGT | BPF_K
    public const ushort JmpJgeK = 0x35;  // BPF_JMP | BPF_JGE | BPF_K
    public const ushort JmpJsetK = 0x45; // BPF_JMP | BPF_JSET | BPF_K
    public const ushort AluAndK = 0x54;  // BPF_ALU | BPF_AND | BPF_K
    public const ushort RetK = 0x06;     // BPF_RET | BPF_K

    /// <summary>BPF_MAXINSNS: the kernel refuses longer programs.</summary>
    public const int MaxInstructions = 4096;

    private readonly List<Item> _items = [];
    private readonly List<int> _labelItem = [];

    /// <summary>A new label, placed later with <see cref="Place"/>.</summary>
    public int NewLabel()
    {
        _labelItem.Add(-1);
        return _labelItem.Count - 1;
    }

    /// <summary>Places <paramref name="label"/> before the next instruction.</summary>
    public void Place(int label)
    {
        if (_labelItem[label] != -1)
        {
            throw new InvalidOperationException($"BPF label {label} placed twice.");
        }

        _labelItem[label] = _items.Count;
    }

    /// <summary>A = 32-bit word at <paramref name="offset"/> of struct seccomp_data.</summary>
    public void Load(uint offset) => _items.Add(new Item(LdWAbs, offset, -1, -1));

    /// <summary>A &amp;= <paramref name="mask"/>.</summary>
    public void And(uint mask) => _items.Add(new Item(AluAndK, mask, -1, -1));

    /// <summary>Return <paramref name="value"/> (a SECCOMP_RET_* action).</summary>
    public void Return(uint value) => _items.Add(new Item(RetK, value, -1, -1));

    /// <summary>Jump to <paramref name="target"/> unconditionally.</summary>
    public void Jump(int target) => _items.Add(new Item(JmpJa, 0, target, -1));

    /// <summary>if (A op k) goto <paramref name="whenTrue"/> else goto <paramref name="whenFalse"/>.</summary>
    public void JumpIf(ushort op, uint k, int whenTrue, int whenFalse) => _items.Add(new Item(op, k, whenTrue, whenFalse));

    /// <summary>Lays the program out and encodes it as sock_filter[] (little-endian, 8 bytes each).</summary>
    public byte[] Assemble()
    {
        for (var i = 0; i < _labelItem.Count; i++)
        {
            if (_labelItem[i] == -1)
            {
                throw new InvalidOperationException($"BPF label {i} never placed.");
            }
        }

        var isLong = new bool[_items.Count];
        int[] start;
        while (true)
        {
            start = Positions(isLong);
            var changed = false;
            for (var i = 0; i < _items.Count; i++)
            {
                var item = _items[i];
                if (!IsConditional(item.Code) || isLong[i])
                {
                    continue;
                }

                if (Distance(start, i, item.True, 1) > 255 || Distance(start, i, item.False, 1) > 255)
                {
                    isLong[i] = true;
                    changed = true;
                }
            }

            if (!changed)
            {
                break;
            }
        }

        var total = start[_items.Count];
        if (total > MaxInstructions)
        {
            throw new InvalidOperationException($"The seccomp filter needs {total} BPF instructions; the kernel takes at most {MaxInstructions}. Simplify the profile (fewer argument rules).");
        }

        var bytes = new byte[total * 8];
        var at = 0;
        void Emit(ushort code, byte jt, byte jf, uint k)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(at), code);
            bytes[at + 2] = jt;
            bytes[at + 3] = jf;
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at + 4), k);
            at += 8;
        }

        for (var i = 0; i < _items.Count; i++)
        {
            var item = _items[i];
            if (item.Code == JmpJa)
            {
                Emit(JmpJa, 0, 0, checked((uint)Distance(start, i, item.True, 1)));
            }
            else if (IsConditional(item.Code) && isLong[i])
            {
                Emit(item.Code, 0, 1, item.K);
                Emit(JmpJa, 0, 0, checked((uint)Distance(start, i, item.True, 2)));
                Emit(JmpJa, 0, 0, checked((uint)Distance(start, i, item.False, 3)));
            }
            else if (IsConditional(item.Code))
            {
                Emit(item.Code, (byte)Distance(start, i, item.True, 1), (byte)Distance(start, i, item.False, 1), item.K);
            }
            else
            {
                Emit(item.Code, 0, 0, item.K);
            }
        }

        return bytes;
    }

    private static bool IsConditional(ushort code) => code is JmpJeqK or JmpJgtK or JmpJgeK or JmpJsetK;

    private int[] Positions(bool[] isLong)
    {
        var start = new int[_items.Count + 1];
        for (var i = 0; i < _items.Count; i++)
        {
            start[i + 1] = start[i] + (isLong[i] ? 3 : 1);
        }

        return start;
    }

    // Offset from the instruction after (start of item i + after) to the label's instruction; forward only.
    private int Distance(int[] start, int item, int label, int after)
    {
        var target = start[_labelItem[label]];
        var from = start[item] + after;
        if (target < from)
        {
            throw new InvalidOperationException("A BPF jump goes backwards: the compiler placed a label before a jump to it.");
        }

        return target - from;
    }

    private readonly record struct Item(ushort Code, uint K, int True, int False);
}
