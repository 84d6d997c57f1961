using System.Security.Cryptography;
using System.Text;
using IsoTest.Server.Http;

namespace IsoTest.Server.Images;

/// <summary>An image a container can be created from, and how it becomes the builder's root.</summary>
internal sealed record ResolvedImage(string Name, string Id, DateTimeOffset Created, Func<ContainerBuilder, ContainerBuilder> Apply)
{
    public ContainerBuilder ApplyTo(ContainerBuilder builder) => Apply(builder);
}

/// <summary>
/// Finds the image a request names. <c>isotest/host</c> (any tag) is IsoTest's own: the host's <c>/</c>
/// read-only behind a private overlay, as <c>FromHost()</c> gives, so `docker run isotest/host redis-server`
/// runs what is installed here.
/// </summary>
internal sealed class ImageResolver
{
    public const string HostImage = "isotest/host";

    private static readonly DateTimeOffset Started = DateTimeOffset.UtcNow;

    public IReadOnlyList<ResolvedImage> List() => [Host()];

    public ResolvedImage Resolve(string? reference)
    {
        if (string.IsNullOrWhiteSpace(reference))
        {
            throw DockerApiException.BadRequest("no image given: name one (e.g. isotest/host)");
        }

        return TryResolve(reference) ?? throw DockerApiException.NoSuchImage(reference);
    }

    public ResolvedImage? TryResolve(string reference)
    {
        var name = Normalise(reference);
        return name == HostImage ? Host()
            : Containers.ReaperContainer.IsReaperImage(reference) ? Builtin(reference, "testcontainers/ryuk")
            : null;
    }

    /// <summary>Drops a default registry and the tag: docker.io/isotest/host:latest → isotest/host.</summary>
    private static string Normalise(string reference)
    {
        var name = reference.StartsWith("docker.io/", StringComparison.Ordinal) ? reference["docker.io/".Length..] : reference;
        var at = name.IndexOf('@', StringComparison.Ordinal);
        name = at >= 0 ? name[..at] : name;
        var colon = name.LastIndexOf(':');
        return colon > name.LastIndexOf('/') ? name[..colon] : name;
    }

    private static ResolvedImage Host() => Builtin(HostImage + ":latest", HostImage);

    /// <summary>An image the server provides itself, with a stable id; its root is the host's (the reaper runs no process at all).</summary>
    private static ResolvedImage Builtin(string name, string key) =>
        new(name, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key))), Started, b => b.FromHost());
}
