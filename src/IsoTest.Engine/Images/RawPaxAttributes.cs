using System.Text;

namespace IsoTest.Engine.Images;

/// <summary>
/// The bytes of the PAX <c>SCHILY.xattr.*</c> and <c>LIBARCHIVE.xattr.*</c> records of the entry <see cref="System.Formats.Tar.TarReader"/>
/// returned last, as the archive holds them. TarReader decodes PAX values as UTF-8, which turns a binary value
/// (<c>security.capability</c>, many <c>user.*</c> values) into U+FFFD; this stream sits between the reader and the
/// archive, follows the tar's blocks as they are read (headers, PAX data, entry data and padding) and keeps the raw
/// records of the extended header that precedes each entry. Not seekable, so the reader reads every byte through it.
/// </summary>
internal sealed class RawPaxAttributes(Stream inner) : Stream
{
    private const int Block = 512;

    private readonly byte[] _header = new byte[Block];
    private int _headerFill;
    private long _dataLeft;      // bytes of the current entry's data (or PAX data) still to come
    private long _paddingLeft;   // zero bytes after them up to the next block
    private MemoryStream? _pax;  // the data of an 'x' header, being read
    private Dictionary<string, byte[]> _pending = new(StringComparer.Ordinal);

    /// <summary>The xattr records (key as in the archive, value as its bytes) of the last entry whose header was read.</summary>
    public IReadOnlyDictionary<string, byte[]> Current { get; private set; } = new Dictionary<string, byte[]>();

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        Observe(buffer[..n]);
        return n;
    }

    private void Observe(ReadOnlySpan<byte> bytes)
    {
        while (bytes.Length > 0)
        {
            if (_dataLeft > 0)
            {
                var take = (int)Math.Min(_dataLeft, bytes.Length);
                _pax?.Write(bytes[..take]);
                _dataLeft -= take;
                bytes = bytes[take..];
                if (_dataLeft == 0 && _pax is not null)
                {
                    ParseRecords(_pax.ToArray());
                    _pax = null;
                }
            }
            else if (_paddingLeft > 0)
            {
                var take = (int)Math.Min(_paddingLeft, bytes.Length);
                _paddingLeft -= take;
                bytes = bytes[take..];
            }
            else
            {
                var take = Math.Min(Block - _headerFill, bytes.Length);
                bytes[..take].CopyTo(_header.AsSpan(_headerFill));
                _headerFill += take;
                bytes = bytes[take..];
                if (_headerFill == Block)
                {
                    _headerFill = 0;
                    OnHeader();
                }
            }
        }
    }

    private void OnHeader()
    {
        if (_header.AsSpan().IndexOfAnyExcept((byte)0) < 0)
        {
            return; // an end-of-archive block
        }

        var type = _header[156];
        var size = Size(_header.AsSpan(124, 12));
        switch (type)
        {
            case (byte)'x':
                _pax = new MemoryStream();
                _pending = new(StringComparer.Ordinal);
                break;
            case (byte)'g' or (byte)'L' or (byte)'K':
                break; // global attributes and GNU long names: data to pass over
            default:
                // An entry: the extended header before it was its own. Its data size may come from that header.
                if (_pending.TryGetValue("size", out var paxSize) && long.TryParse(Encoding.ASCII.GetString(paxSize), out var s))
                {
                    size = s;
                }

                _pending.Remove("size");
                Current = _pending;
                _pending = new(StringComparer.Ordinal);
                break;
        }

        _dataLeft = size;
        _paddingLeft = (Block - (size % Block)) % Block;
        if (size == 0 && _pax is not null)
        {
            _pax = null;
        }
    }

    /// <summary>"LEN key=value\n" records, LEN counting every byte of the record; values are bytes, never decoded.</summary>
    private void ParseRecords(byte[] data)
    {
        var i = 0;
        while (i < data.Length)
        {
            var space = Array.IndexOf(data, (byte)' ', i);
            if (space < 0 || !int.TryParse(Encoding.ASCII.GetString(data, i, space - i), out var length) || length <= 0 || i + length > data.Length)
            {
                return; // malformed: TarReader reports it
            }

            var record = data.AsSpan(space + 1, i + length - space - 2); // without the trailing '\n'
            var eq = record.IndexOf((byte)'=');
            if (eq > 0)
            {
                var key = Encoding.UTF8.GetString(record[..eq]);
                if (key == "size" || key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal) || key.StartsWith("LIBARCHIVE.xattr.", StringComparison.Ordinal))
                {
                    _pending[key] = record[(eq + 1)..].ToArray();
                }
            }

            i += length;
        }
    }

    /// <summary>A header's size field: octal digits, or base-256 (GNU) when the first byte's high bit is set.</summary>
    private static long Size(ReadOnlySpan<byte> field)
    {
        if ((field[0] & 0x80) != 0)
        {
            long value = field[0] & 0x7F;
            foreach (var b in field[1..])
            {
                value = (value << 8) | b;
            }

            return value;
        }

        long octal = 0;
        foreach (var b in field)
        {
            if (b is >= (byte)'0' and <= (byte)'7')
            {
                octal = (octal * 8) + (b - '0');
            }
            else if (octal > 0 || b is not ((byte)' ' or 0))
            {
                break;
            }
        }

        return octal;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
