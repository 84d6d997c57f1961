using System.Globalization;

namespace IsoTest;

/// <summary>Parses sizes the way Docker does: <c>64m</c>, <c>1g</c>, <c>512k</c>, <c>1048576</c> (binary units).</summary>
public static class ByteSize
{
    /// <summary>Parses <paramref name="text"/>; returns false with a reason when it is not a size.</summary>
    public static bool TryParse(string? text, out long bytes, out string? error)
    {
        bytes = 0;
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "empty size";
            return false;
        }

        var s = text.Trim().ToLowerInvariant();
        if (s.EndsWith('b') && s.Length > 1 && !char.IsDigit(s[^2]))
        {
            s = s[..^1]; // "64mb" → "64m"
        }

        long unit = s[^1] switch
        {
            'k' => 1L << 10,
            'm' => 1L << 20,
            'g' => 1L << 30,
            't' => 1L << 40,
            'b' => 1,
            _ => 0,
        };
        var number = unit == 0 ? s : s[..^1];
        if (unit == 0)
        {
            unit = 1;
        }

        if (!decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || value < 0)
        {
            error = $"'{text}' is not a size: use a number with an optional unit b, k, m or g (e.g. 64m)";
            return false;
        }

        // Compared before multiplying: decimal itself overflows (OverflowException) past ~7.9e28 (found by the
        // spec fuzzer, bench/IsoTest.Reliability fuzz).
        if (value > long.MaxValue / unit)
        {
            error = $"'{text}' is too large";
            return false;
        }

        bytes = (long)(value * unit);
        return true;
    }

    /// <summary>Parses <paramref name="text"/> or throws <see cref="FormatException"/> naming the problem.</summary>
    public static long Parse(string text) =>
        TryParse(text, out var bytes, out var error) ? bytes : throw new FormatException(error);
}
