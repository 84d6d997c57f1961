using System.Globalization;
using System.Text;
using System.Text.Json;
using IsoTest.Engine.Containers;
using IsoTest.Engine.Native;
using IsoTest.Server.Containers;
using IsoTest.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace IsoTest.Server.Api;

/// <summary>
/// <c>/containers/{id}/archive</c>: <c>docker cp</c> both ways and Testcontainers' file copies. HEAD stats a path
/// (dockerd's <c>X-Docker-Container-Path-Stat</c> header), GET returns it as a tar, PUT unpacks a tar into a
/// directory. The engine does the file work (<see cref="ContainerFiles"/>), inside the container's root.
/// </summary>
internal static class ArchiveEndpoints
{
    /// <summary>The largest upload taken in one request (Kestrel's request body limit is set to the same).</summary>
    public const long MaxUpload = 1L << 30;

    private const string StatHeader = "X-Docker-Container-Path-Stat";

    public static void Map(IEndpointRouteBuilder app, ContainerTable table)
    {
        app.MapMethods("/containers/{id}/archive", ["HEAD"], (string id, string? path, HttpContext context) =>
        {
            var (container, wanted) = (table.Find(id), Required(path));
            using var root = OpenRoot(container);
            context.Response.Headers[StatHeader] = StatValue(wanted, Found(container, wanted, ContainerFiles.Stat(root, wanted)));
            return Results.Ok();
        });

        app.MapGet("/containers/{id}/archive", async (string id, string? path, HttpContext context) =>
        {
            var (container, wanted) = (table.Find(id), Required(path));
            using var root = OpenRoot(container);
            context.Response.Headers[StatHeader] = StatValue(wanted, Found(container, wanted, ContainerFiles.Stat(root, wanted)));
            context.Response.ContentType = "application/x-tar";
            await ContainerFiles.ArchiveAsync(root, wanted, context.Response.Body, context.RequestAborted).ConfigureAwait(false);
        });

        app.MapPut("/containers/{id}/archive", async (string id, string? path, HttpContext context) =>
        {
            var (container, wanted) = (table.Find(id), Required(path));
            if (context.Request.ContentLength > MaxUpload)
            {
                throw new DockerApiException(StatusCodes.Status413PayloadTooLarge, $"the archive of {context.Request.ContentLength} bytes is larger than IsoTest's server takes in one upload ({MaxUpload >> 30} GiB): copy it in parts");
            }

            // dockerd refuses an upload into a read-only root up front unless the directory is on a mount of its own.
            if (container.Inner.Spec.ReadOnlyRootFileSystem && !container.Inner.Spec.Mounts.Any(m => m.Kind != MountKind.Tmpfs && IsUnder(wanted, m.Target)))
            {
                throw new DockerApiException(StatusCodes.Status403Forbidden, "container rootfs is marked read-only");
            }

            // Spooled first, so the whole archive is checked before anything is written (nothing half-unpacked from a bad one).
            var spool = new FileStream(Path.Combine(Path.GetTempPath(), $"isotest-server-upload-{Guid.NewGuid():N}.tar"), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
            await using (spool.ConfigureAwait(false))
            {
                await context.Request.Body.CopyToAsync(spool, context.RequestAborted).ConfigureAwait(false);
                spool.Position = 0;
                var engine = Engine(container);
                try
                {
                    container.FilesCopiedIn = true;
                    engine.CopyIn(wanted, spool, context.RequestAborted);
                }
                catch (ContainerFileException e)
                {
                    throw e.Problem switch
                    {
                        ContainerFileProblem.NotRunning => DockerApiException.Conflict(e.Message),
                        ContainerFileProblem.BadOwner => DockerApiException.BadRequest(e.Message),
                        ContainerFileProblem.NotFound => NotFound(container, wanted),
                        ContainerFileProblem.NotADirectory => DockerApiException.BadRequest("extraction point is not a directory"),
                        ContainerFileProblem.ReadOnly => new DockerApiException(StatusCodes.Status403Forbidden, $"the filesystem at {wanted} is read-only: {e.Message}"),
                        ContainerFileProblem.Denied => new DockerApiException(StatusCodes.Status403Forbidden, $"cannot write into {wanted}: {e.Message}"),
                        _ => DockerApiException.BadRequest($"invalid archive for {wanted}: {e.Message}; every entry must be a file, directory, link or special file that stays inside {wanted}"),
                    };
                }
            }

            return Results.Ok();
        });
    }

    private static string Required(string? path) =>
        string.IsNullOrEmpty(path) ? throw DockerApiException.BadRequest("path cannot be empty: give ?path=/absolute/path/in/container") : path;

    /// <summary>The container's root, or dockerd-shaped errors: another backend, or a container that is not set up.</summary>
    private static EngineContainer Engine(ServerContainer container) =>
        container.Inner as EngineContainer
        ?? throw new DockerApiException(StatusCodes.Status501NotImplemented, $"copying files is served only for containers of the built-in engine; {container.Name} runs on another backend");

    private static LayerTree OpenRoot(ServerContainer container)
    {
        try
        {
            return Engine(container).OpenRoot();
        }
        catch (ContainerFileException e)
        {
            throw DockerApiException.Conflict(e.Message);
        }
    }

    private static TreeEntry Found(ServerContainer container, string path, TreeEntry? entry) => entry ?? throw NotFound(container, path);

    private static DockerApiException NotFound(ServerContainer container, string path) =>
        new(StatusCodes.Status404NotFound, $"Could not find the file {path} in container {container.Name}");

    private static bool IsUnder(string path, string mountTarget)
    {
        var (p, m) = (ContainerFiles.Relative(path), ContainerFiles.Relative(mountTarget));
        return p == m || p.StartsWith(m + "/", StringComparison.Ordinal);
    }

    /// <summary>dockerd's path stat: base64 of <c>{"name","size","mode","mtime","linkTarget"}</c>, the mode in Go's os.FileMode bits.</summary>
    private static string StatValue(string path, TreeEntry entry)
    {
        var relative = ContainerFiles.Relative(path);
        var stat = new Dictionary<string, object?>
        {
            ["name"] = relative.Length == 0 ? "/" : relative[(relative.LastIndexOf('/') + 1)..],
            ["size"] = entry.Size,
            ["mode"] = GoFileMode(entry),
            ["mtime"] = entry.Modified.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.FFFFFFFK", CultureInfo.InvariantCulture),
            ["linkTarget"] = entry.LinkTarget ?? "",
        };
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(stat, ServerJson.Options)));
    }

    private static uint GoFileMode(TreeEntry entry)
    {
        uint mode = (uint)entry.Mode & 0x1FF;
        mode |= (entry.Mode & 0x800) != 0 ? 1u << 23 : 0;   // setuid
        mode |= (entry.Mode & 0x400) != 0 ? 1u << 22 : 0;   // setgid
        mode |= (entry.Mode & 0x200) != 0 ? 1u << 20 : 0;   // sticky
        return mode | entry.Kind switch
        {
            TreeNodeKind.Directory => 1u << 31,
            TreeNodeKind.Symlink => 1u << 27,
            TreeNodeKind.File => 0u,
            _ when entry.IsFifo => 1u << 25,
            _ when entry.IsCharacterDevice => (1u << 26) | (1u << 21),
            _ when entry.IsBlockDevice => 1u << 26,
            _ => 1u << 24,   // a socket
        };
    }
}
