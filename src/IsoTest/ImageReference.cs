using System.Diagnostics.CodeAnalysis;

namespace IsoTest;

/// <summary>
/// An image reference normalised as the docker CLI does it: <c>postgres</c> is
/// <c>docker.io/library/postgres:latest</c>, <c>localhost:5000/app:1</c> keeps its registry,
/// <c>name@sha256:…</c> pins a digest. One parser, shared by every backend.
/// </summary>
public sealed record ImageReference
{
    /// <summary>The registry Docker Hub references normalise to.</summary>
    public const string DockerHub = "docker.io";

    private const int MaxNameLength = 255;

    private ImageReference(string registry, string repository, string? tag, string? digest)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>The registry host, with its port if one was given (<c>docker.io</c>, <c>localhost:5000</c>).</summary>
    public string Registry { get; }

    /// <summary>The repository path inside the registry (<c>library/postgres</c>).</summary>
    public string Repository { get; }

    /// <summary>The tag; <c>latest</c> when neither tag nor digest was given, null for a digest-only reference.</summary>
    public string? Tag { get; }

    /// <summary>The pinned manifest digest (<c>sha256:…</c>), or null.</summary>
    public string? Digest { get; }

    /// <summary>What a registry is asked for: the digest when pinned, else the tag.</summary>
    public string ManifestReference => Digest ?? Tag!;

    /// <summary><c>registry/repository</c>, without tag or digest.</summary>
    public string Name => $"{Registry}/{Repository}";

    /// <summary>The name as the docker CLI prints it: <c>postgres</c> for <c>docker.io/library/postgres</c>.</summary>
    public string FamiliarName => Registry == DockerHub
        ? (Repository.StartsWith("library/", StringComparison.Ordinal) ? Repository["library/".Length..] : Repository)
        : Name;

    /// <summary>The fully normalised reference: <c>docker.io/library/postgres:16</c>, <c>…@sha256:…</c>.</summary>
    public override string ToString() => Name + (Tag is null ? "" : ":" + Tag) + (Digest is null ? "" : "@" + Digest);

    /// <summary>The short form the docker CLI prints: <c>postgres:16</c>.</summary>
    public string ToFamiliarString() => FamiliarName + (Tag is null ? "" : ":" + Tag) + (Digest is null ? "" : "@" + Digest);

    /// <summary>Parses and normalises <paramref name="reference"/>.</summary>
    /// <exception cref="ArgumentException">Not a valid reference; the message says which part is wrong.</exception>
    public static ImageReference Parse(string reference)
    {
        var error = TryParseCore(reference, out var result);
        return error is null ? result! : throw new ArgumentException($"'{reference}' is not an image reference: {error}.", nameof(reference));
    }

    /// <summary>Parses and normalises <paramref name="reference"/>; false when it is not valid.</summary>
    public static bool TryParse(string? reference, [NotNullWhen(true)] out ImageReference? result) =>
        TryParseCore(reference, out result) is null;

    /// <summary>Why <paramref name="reference"/> is not valid, or null when it is.</summary>
    internal static string? Validate(string? reference) => TryParseCore(reference, out _);

    /// <summary>The same repository with another tag (used for tagging on import).</summary>
    internal ImageReference WithTag(string tag) => new(Registry, Repository, tag, null);

    /// <summary>The same repository pinned to a digest, keeping the tag.</summary>
    internal ImageReference WithDigest(string digest) => new(Registry, Repository, Tag, digest);

    private static string? TryParseCore(string? reference, out ImageReference? result)
    {
        result = null;
        if (string.IsNullOrEmpty(reference))
        {
            return "it is empty; give a name such as \"busybox\" or \"localhost:5000/app:1\"";
        }

        var rest = reference;
        string? digest = null;
        var at = rest.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            digest = rest[(at + 1)..];
            rest = rest[..at];
            if (!IsDigest(digest))
            {
                return $"the digest '{digest}' is not algorithm:hex (sha256 with 64 lowercase hex digits)";
            }
        }

        string? tag = null;
        var colon = rest.LastIndexOf(':');
        if (colon > rest.LastIndexOf('/'))
        {
            tag = rest[(colon + 1)..];
            rest = rest[..colon];
            if (!IsTag(tag))
            {
                return $"the tag '{tag}' is not valid (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')";
            }
        }

        if (rest.Length == 0)
        {
            return "it has no repository name";
        }

        // docker/distribution: the first component is a registry when it looks like a host
        // (has '.' or ':', is localhost, or has capitals, which no repository may have).
        var registry = DockerHub;
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var path = rest;
        if (slash >= 0)
        {
            var first = rest[..slash];
            if (first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal) || first == "localhost" || first.Any(char.IsUpper))
            {
                registry = first;
                path = rest[(slash + 1)..];
                if (!IsHost(registry))
                {
                    return $"the registry '{registry}' is not host[:port]";
                }
            }
        }

        if (registry == "index.docker.io")
        {
            registry = DockerHub;
        }

        if (path.Any(char.IsUpper))
        {
            return $"the repository '{path}' has capitals: repository names must be lowercase";
        }

        foreach (var component in path.Split('/'))
        {
            if (!IsPathComponent(component))
            {
                return $"the path component '{component}' is not valid (lowercase letters and digits, separated by '.', '_', '__' or '-')";
            }
        }

        if (registry == DockerHub && !path.Contains('/', StringComparison.Ordinal))
        {
            path = "library/" + path;
        }

        if (registry.Length + 1 + path.Length > MaxNameLength)
        {
            return $"the name is longer than {MaxNameLength} characters";
        }

        result = new ImageReference(registry, path, tag ?? (digest is null ? "latest" : null), digest);
        return null;
    }

    /// <summary><c>sha256:</c> + 64 lowercase hex; other algorithms: a name and at least 32 hex digits, as the OCI spec allows.</summary>
    internal static bool IsDigest(string digest)
    {
        var colon = digest.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            return false;
        }

        var algorithm = digest[..colon];
        var hex = digest[(colon + 1)..];
        if (!algorithm.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '+' or '.' or '_' or '-'))
        {
            return false;
        }

        var isHex = hex.Length > 0 && hex.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));
        return algorithm switch
        {
            "sha256" => isHex && hex.Length == 64,
            "sha512" => isHex && hex.Length == 128,
            _ => isHex && hex.Length >= 32,
        };
    }

    private static bool IsTag(string tag) =>
        tag.Length is > 0 and <= 128 && IsWord(tag[0]) && tag.All(c => IsWord(c) || c is '.' or '-');

    private static bool IsWord(char c) => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_';

    private static bool IsAlnum(char c) => c is (>= 'a' and <= 'z') or (>= '0' and <= '9');

    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    private static bool IsPathComponent(string s)
    {
        if (s.Length == 0 || !IsAlnum(s[0]) || !IsAlnum(s[^1]))
        {
            return false;
        }

        for (var i = 0; i < s.Length; i++)
        {
            if (IsAlnum(s[i]))
            {
                continue;
            }

            var start = i;
            while (i < s.Length && !IsAlnum(s[i]))
            {
                i++;
            }

            var sep = s[start..i];
            if (sep is not ("." or "_" or "__") && !sep.All(c => c == '-'))
            {
                return false;
            }

            i--;
        }

        return true;
    }

    private static bool IsHost(string host)
    {
        var hostPart = host;
        if (host.StartsWith('['))
        {
            var close = host.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                return false;
            }

            hostPart = host[..(close + 1)];
            var after = host[(close + 1)..];
            return after.Length == 0 || (after[0] == ':' && IsPort(after[1..]));
        }

        var colon = host.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            if (!IsPort(host[(colon + 1)..]))
            {
                return false;
            }

            hostPart = host[..colon];
        }

        return hostPart.Split('.').All(label =>
            label.Length > 0 && char.IsAsciiLetterOrDigit(label[0]) && char.IsAsciiLetterOrDigit(label[^1])
            && label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'));
    }

    private static bool IsPort(string port) => port.Length is > 0 and <= 5 && port.All(char.IsAsciiDigit);
}
