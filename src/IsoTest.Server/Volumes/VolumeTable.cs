using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using IsoTest.Server.Http;

namespace IsoTest.Server.Volumes;

/// <summary>A named volume: a directory on the host, bound into the containers that mount it.</summary>
internal sealed record ServerVolume(string Name, string Mountpoint, DateTimeOffset Created, IReadOnlyDictionary<string, string> Labels);

/// <summary>
/// The server's named volumes, as dockerd's <c>local</c> driver keeps them: one directory per volume under the
/// data root (<c>volumes/NAME/_data</c>, its labels and creation time beside it), so they outlive the server and
/// its containers until <c>docker volume rm</c>. A container mounts one with <c>-v NAME:/path</c>, which makes
/// it when it does not exist yet, as dockerd does.
/// </summary>
internal sealed partial class VolumeTable(string root, TimeProvider clock)
{
    private readonly Lock _lock = new();

    public string Root { get; } = root;

    public ServerVolume Create(string? name, IReadOnlyDictionary<string, string>? labels)
    {
        name = string.IsNullOrEmpty(name) ? Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)) : name;
        if (!ValidName().IsMatch(name))
        {
            throw DockerApiException.BadRequest($"create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path");
        }

        lock (_lock)
        {
            if (Find(name) is { } existing)
            {
                return existing;   // dockerd: creating an existing volume gives it back
            }

            var directory = Path.Combine(Root, name);
            var data = Path.Combine(directory, "_data");
            try
            {
                Directory.CreateDirectory(data);
                File.SetUnixFileMode(data, (UnixFileMode)0b111_101_101);
                var meta = new Meta { Created = clock.GetUtcNow(), Labels = labels?.ToDictionary() ?? [] };
                File.WriteAllText(Path.Combine(directory, "volume.json"), JsonSerializer.Serialize(meta, ServerJson.Options));
            }
            catch
            {
                Directory.Delete(directory, recursive: true);   // nothing half-made
                throw;
            }

            return Find(name)!;
        }
    }

    public IEnumerable<ServerVolume> All =>
        Directory.Exists(Root)
            ? Directory.EnumerateDirectories(Root).Select(Path.GetFileName).Order(StringComparer.Ordinal).Select(n => Find(n!)).OfType<ServerVolume>().ToList()
            : [];

    /// <summary>The volume of that name, or null; a directory without its metadata file is not one.</summary>
    public ServerVolume? Find(string name)
    {
        if (!ValidName().IsMatch(name))
        {
            return null;
        }

        var directory = Path.Combine(Root, name);
        try
        {
            var meta = JsonSerializer.Deserialize<Meta>(File.ReadAllText(Path.Combine(directory, "volume.json")), ServerJson.Options) ?? new Meta();
            return new ServerVolume(name, Path.Combine(directory, "_data"), meta.Created, meta.Labels);
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Removes a volume and its data; the caller checked that no container mounts it.</summary>
    public void Remove(ServerVolume volume)
    {
        lock (_lock)
        {
            // .NET's recursive delete removes symlinks a container left there, never what they point to.
            Directory.Delete(Path.Combine(Root, volume.Name), recursive: true);
        }
    }

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex ValidName();

    private sealed class Meta
    {
        public DateTimeOffset Created { get; set; }

        public Dictionary<string, string> Labels { get; set; } = [];
    }
}
