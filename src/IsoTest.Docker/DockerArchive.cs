using System.Formats.Tar;

namespace IsoTest.Docker;

/// <summary>
/// Tar streams for the daemon: files and copy-on-write directories uploaded into a container before it
/// starts (<c>PUT /containers/{id}/archive</c>), and root filesystem directories imported as images.
/// Written to a temporary file, not memory: a root filesystem can be hundreds of megabytes.
/// </summary>
internal sealed class DockerArchive : IAsyncDisposable
{
    private readonly string _path;
    private readonly FileStream _file;
    private readonly TarWriter _writer;

    private DockerArchive()
    {
        _path = Path.Combine(Path.GetTempPath(), $"isotest-docker-{Guid.NewGuid():N}.tar");
        _file = new FileStream(_path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        _writer = new TarWriter(_file, TarEntryFormat.Pax, leaveOpen: true);
    }

    internal static DockerArchive Create() => new();

    internal bool IsEmpty { get; private set; } = true;

    /// <summary>Adds a file with the spec's content, mode and owner at its absolute target path.</summary>
    internal async Task AddFileAsync(FileCopySpec file, CancellationToken cancellationToken)
    {
        byte[] content = file.Content is { } bytes
            ? bytes.ToArray()
            : await File.ReadAllBytesAsync(file.SourcePath!, cancellationToken).ConfigureAwait(false);
        var entry = new PaxTarEntry(TarEntryType.RegularFile, Relative(file.Target))
        {
            Mode = (UnixFileMode)file.Mode,
            Uid = file.Uid,
            Gid = file.Gid,
            ModificationTime = DateTimeOffset.UtcNow,
            DataStream = new MemoryStream(content, writable: false),
        };
        await _writer.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
        IsEmpty = false;
    }

    /// <summary>
    /// Adds the tree under <paramref name="sourceDirectory"/> (modes, owners, symlinks, devices kept;
    /// symlinks not followed) so that it appears at <paramref name="target"/> ("/" for a root filesystem).
    /// </summary>
    internal async Task AddDirectoryAsync(string sourceDirectory, string target, CancellationToken cancellationToken)
    {
        var root = Path.GetFullPath(sourceDirectory);
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"Directory '{root}' does not exist.");
        }

        var prefix = Relative(target);
        if (prefix.Length > 0)
        {
            // The target directory itself, with the source directory's mode and owner.
            await _writer.WriteEntryAsync(root, prefix + "/", cancellationToken).ConfigureAwait(false);
        }

        await AddTreeAsync(root, prefix, cancellationToken).ConfigureAwait(false);
        IsEmpty = false;
    }

    private async Task AddTreeAsync(string directory, string prefix, CancellationToken cancellationToken)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = 0, IgnoreInaccessible = false };
        foreach (var path in Directory.EnumerateFileSystemEntries(directory, "*", options).Order(StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = prefix.Length == 0 ? Path.GetFileName(path) : prefix + "/" + Path.GetFileName(path);
            var info = new FileInfo(path);
            var isLink = info.LinkTarget is not null;
            var isDirectory = !isLink && info.Attributes.HasFlag(FileAttributes.Directory);
            await _writer.WriteEntryAsync(path, isDirectory ? name + "/" : name, cancellationToken).ConfigureAwait(false);
            if (isDirectory)
            {
                await AddTreeAsync(path, name, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Finishes the archive and returns a stream over it from the start; valid until disposal.</summary>
    internal async Task<Stream> OpenReadAsync()
    {
        await _writer.DisposeAsync().ConfigureAwait(false);
        await _file.FlushAsync().ConfigureAwait(false);
        _file.Position = 0;
        return new NonClosingStream(_file);
    }

    public async ValueTask DisposeAsync()
    {
        await _writer.DisposeAsync().ConfigureAwait(false);
        await _file.DisposeAsync().ConfigureAwait(false); // DeleteOnClose removes the temporary file
    }

    /// <summary>"/etc/app.conf" → "etc/app.conf": entries are relative to the extraction root "/".</summary>
    private static string Relative(string absolute) => absolute.Trim('/');

    /// <summary>The HTTP client disposes the content stream it sent; the archive owns the file.</summary>
    private sealed class NonClosingStream(Stream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => inner.CanSeek;

        public override bool CanWrite => false;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => inner.Position = value; }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
