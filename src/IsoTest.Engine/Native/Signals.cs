using System.Globalization;

namespace IsoTest.Engine.Native;

/// <summary>Signal names as images and Docker write them (<c>SIGINT</c>, <c>INT</c>, <c>2</c>), to Linux's numbers.</summary>
internal static class Signals
{
    // Linux's numbers on x86_64 and arm64 (asm-generic); the architectures this engine builds for share them.
    private static readonly Dictionary<string, int> Numbers = new(StringComparer.OrdinalIgnoreCase)
    {
        ["HUP"] = 1, ["INT"] = 2, ["QUIT"] = 3, ["ILL"] = 4, ["TRAP"] = 5, ["ABRT"] = 6, ["IOT"] = 6, ["BUS"] = 7,
        ["FPE"] = 8, ["KILL"] = 9, ["USR1"] = 10, ["SEGV"] = 11, ["USR2"] = 12, ["PIPE"] = 13, ["ALRM"] = 14,
        ["TERM"] = 15, ["STKFLT"] = 16, ["CHLD"] = 17, ["CONT"] = 18, ["STOP"] = 19, ["TSTP"] = 20, ["TTIN"] = 21,
        ["TTOU"] = 22, ["URG"] = 23, ["XCPU"] = 24, ["XFSZ"] = 25, ["VTALRM"] = 26, ["PROF"] = 27, ["WINCH"] = 28,
        ["IO"] = 29, ["POLL"] = 29, ["PWR"] = 30, ["SYS"] = 31,
    };

    private const int RtMin = 34, RtMax = 64;

    /// <summary>The number <paramref name="name"/> names, or null when it names none.</summary>
    public static int? Parse(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return null;
        }

        var s = name.Trim();
        if (int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            return n is > 0 and <= RtMax ? n : null;
        }

        if (s.StartsWith("SIG", StringComparison.OrdinalIgnoreCase))
        {
            s = s[3..];
        }

        if (Numbers.TryGetValue(s, out n))
        {
            return n;
        }

        // RTMIN+n / RTMAX-n, as Docker accepts them
        if (s.StartsWith("RTMIN", StringComparison.OrdinalIgnoreCase))
        {
            return Offset(s[5..], RtMin, +1);
        }

        return s.StartsWith("RTMAX", StringComparison.OrdinalIgnoreCase) ? Offset(s[5..], RtMax, -1) : null;

        static int? Offset(string rest, int from, int sign)
        {
            if (rest.Length == 0)
            {
                return from;
            }

            return (rest[0] == (sign > 0 ? '+' : '-')) && int.TryParse(rest[1..], NumberStyles.None, CultureInfo.InvariantCulture, out var k) && k <= RtMax - RtMin
                ? from + (sign * k)
                : null;
        }
    }
}
