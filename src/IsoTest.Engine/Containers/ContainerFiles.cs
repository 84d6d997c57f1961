using System.Formats.Tar;
using IsoTest.Engine.Images;
using IsoTest.Engine.Native;

namespace IsoTest.Engine.Containers;

/// <summary>Why a copy into or out of a container failed, for the caller to word (the API server in dockerd's words).</summary>
internal enum ContainerFileProblem
{
    /// <summary>The container has no set-up root right now (it exited, or is not made yet).</summary>
    NotRunning,

    /// <summary>Nothing is at the path inside the container.</summary>
    NotFound,

    /// <summary>An upload's target is not a directory.</summary>
    NotADirectory,

    /// <summary>An entry's owner cannot exist inside (rootless: only the container user does).</summary>
    BadOwner,

    /// <summary>The archive is malformed, or an entry would leave the target directory.</summary>
    BadArchive,

    /// <summary>The filesystem at the target is read-only.</summary>
    ReadOnly,

    /// <summary>The target refused a write for want of permission (rootless: the engine writes as the caller).</summary>
    Denied,
}

/// <summary>A copy into or out of a container that failed, with the reason as data.</summary>
internal sealed class ContainerFileException(ContainerFileProblem problem, string message, Exception? inner = null) : Exception(message, inner)
{
    public ContainerFileProblem Problem { get; } = problem;
}

/// <summary>
/// <c>docker cp</c>'s half in the engine: tar archives into and out of a live container's root, read and
/// written from the host through the root its init sees (<see cref="LayerTree.OpenRootOf"/>), so every mount
/// of the container (tmpfs, binds) is where the container has it, and every path (<c>..</c>, absolute
/// symlinks) resolves inside that root, never on the host. Writes go through the tar extractor the image
/// store uses, so an archive cannot place anything outside its target directory.
/// </summary>
internal static class ContainerFiles
{
    /// <summary>A container path ("/etc/app", "etc/../etc/app") as a path relative to its root ("etc/app"); "" is the root. ".." stops at the root, as in the container.</summary>
    public static string Relative(string path)
    {
        var parts = new List<string>();
        foreach (var part in path.Split('/'))
        {
            if (part.Length == 0 || part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }

                continue;
            }

            parts.Add(part);
        }

        return string.Join('/', parts);
    }

    /// <summary>What is at <paramref name="path"/> inside the container (a last symlink not followed); null when nothing is.</summary>
    public static TreeEntry? Stat(LayerTree root, string path)
    {
        try
        {
            return root.Stat(Relative(path));
        }
        catch (LayerTreeException e)
        {
            throw new ContainerFileException(ContainerFileProblem.NotFound, e.Message, e);
        }
    }

    /// <summary>
    /// Unpacks <paramref name="tar"/> (plain or compressed) into directory <paramref name="directory"/> inside the
    /// container, written as <paramref name="options"/> say (the owners, the devices). <paramref name="owner"/> (entry
    /// name, uid, gid) says why an owner cannot be had, or null when it can; it is asked of every entry before anything
    /// is written.
    /// </summary>
    public static void Extract(LayerTree root, string directory, Stream tar, UnpackOptions options, Func<string, int, int, string?>? owner, CancellationToken cancellationToken)
    {
        var target = Relative(directory);
        if (!root.IsDirectory(target))
        {
            throw Stat(root, directory) is null
                ? new ContainerFileException(ContainerFileProblem.NotFound, $"no such directory: {directory}")
                : new ContainerFileException(ContainerFileProblem.NotADirectory, $"{directory} is not a directory");
        }

        try
        {
            if (tar.CanSeek)
            {
                Check(tar, owner, cancellationToken);
                tar.Position = 0;
            }

            using var input = LayerUnpacker.Decompress(tar);
            LayerUnpacker.Extract(input, root, target, options, layer: false, cancellationToken);
        }
        catch (LayerFormatException e)
        {
            var rootless = !Credentials.IsRoot;
            var problem = e.ReadOnly ? ContainerFileProblem.ReadOnly : e.Denied && rootless ? ContainerFileProblem.Denied : ContainerFileProblem.BadArchive;
            var message = problem == ContainerFileProblem.Denied
                ? $"{e.Message}: rootless, a copy into a created or running container is written as the container's root, in its " +
                  "user namespace, which has no rights over files owned by ids it does not map (in the host's root, the host's own " +
                  "files: /etc, /usr); copy into a directory of the container's (/tmp, its volumes, what its image holds), declare " +
                  "the file before start (WithFile: it lands in the container's own layer), or run as root"
                : e.Message;
            throw new ContainerFileException(problem, message, e);
        }
    }

    /// <summary>Reads every header once before anything is written: a malformed archive, or one whose names climb out, writes nothing.</summary>
    private static void Check(Stream tar, Func<string, int, int, string?>? owner, CancellationToken cancellationToken)
    {
        try
        {
            using var input = LayerUnpacker.Decompress(tar);
            using var reader = new TarReader(input, leaveOpen: true);
            while (reader.GetNextEntry(copyData: false) is { } entry)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var name = LayerUnpacker.Clean(entry.Name);
                if (owner?.Invoke(name, entry.Uid, entry.Gid) is { } problem)
                {
                    throw new ContainerFileException(ContainerFileProblem.BadOwner, problem);
                }

                switch (entry.EntryType)
                {
                    case TarEntryType.HardLink:
                        LayerUnpacker.Clean(entry.LinkName);
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile or TarEntryType.Directory
                        or TarEntryType.SymbolicLink or TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo
                        or TarEntryType.GlobalExtendedAttributes:
                        break;
                    default:
                        throw new LayerFormatException($"entry '{entry.Name}' is of a kind that cannot be copied in ({entry.EntryType})");
                }
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
        {
            throw new LayerFormatException(e is EndOfStreamException ? "the archive ends in the middle of an entry (truncated)" : $"not a valid tar archive: {e.Message}", e);
        }
    }

    /// <summary>
    /// Writes a tar of <paramref name="path"/> (a file, a symlink itself, or a directory with everything under it)
    /// to <paramref name="output"/>, its entries named from the path's last component, as dockerd names them.
    /// </summary>
    public static async Task ArchiveAsync(LayerTree root, string path, Stream output, CancellationToken cancellationToken)
    {
        var relative = Relative(path);
        var top = Stat(root, path) ?? throw new ContainerFileException(ContainerFileProblem.NotFound, $"no such file or directory: {path}");
        var name = relative.Length == 0 ? "." : relative[(relative.LastIndexOf('/') + 1)..];
        var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        await using (writer.ConfigureAwait(false))
        {
            await AddAsync(writer, root, relative, name, top, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task AddAsync(TarWriter writer, LayerTree root, string relative, string name, TreeEntry entry, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var type = entry.Kind switch
        {
            TreeNodeKind.Directory => TarEntryType.Directory,
            TreeNodeKind.File => TarEntryType.RegularFile,
            TreeNodeKind.Symlink => TarEntryType.SymbolicLink,
            _ when entry.IsFifo => TarEntryType.Fifo,
            _ when entry.IsCharacterDevice => TarEntryType.CharacterDevice,
            _ when entry.IsBlockDevice => TarEntryType.BlockDevice,
            _ => (TarEntryType?)null,
        };
        if (type is not { } entryType)
        {
            return; // a socket: tar has no form for it (dockerd skips them too)
        }

        var header = new PaxTarEntry(entryType, entryType == TarEntryType.Directory ? name + "/" : name)
        {
            Mode = (UnixFileMode)entry.Mode,
            Uid = entry.Uid,
            Gid = entry.Gid,
            ModificationTime = entry.Modified,
        };
        if (entryType == TarEntryType.SymbolicLink)
        {
            header.LinkName = entry.LinkTarget ?? "";
        }
        else if (entryType is TarEntryType.CharacterDevice or TarEntryType.BlockDevice)
        {
            header.DeviceMajor = entry.DeviceMajor;
            header.DeviceMinor = entry.DeviceMinor;
        }

        if (entryType == TarEntryType.RegularFile)
        {
            var file = root.OpenRead(relative);
            await using (file.ConfigureAwait(false))
            {
                header.DataStream = file;
                await writer.WriteEntryAsync(header, cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        await writer.WriteEntryAsync(header, cancellationToken).ConfigureAwait(false);
        if (entryType != TarEntryType.Directory)
        {
            return;
        }

        foreach (var child in root.List(relative))
        {
            var childPath = relative.Length == 0 ? child : relative + "/" + child;
            if (root.Stat(childPath) is { } found)
            {
                await AddAsync(writer, root, childPath, name == "." ? child : name + "/" + child, found, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
