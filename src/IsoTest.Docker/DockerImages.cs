using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace IsoTest.Docker;

/// <summary>Turns a spec's root filesystem into an image the daemon has: pulled, imported or refused.</summary>
internal sealed class DockerImages(IDockerClient client, ImagePullPolicy pullPolicy)
{
    /// <summary>Repository of images imported from directories; the tag is a hash of path and mtime.</summary>
    internal const string DirectoryRepository = "isotest-dir";

    private readonly SemaphoreSlim _gate = new(1, 1);

    private readonly Dictionary<(string Path, long Size, DateTime Mtime), string> _loaded = [];

    internal async Task<string> EnsureAsync(ContainerSpec spec, CancellationToken cancellationToken)
    {
        var root = spec.RootFileSystem;
        switch (root.Kind)
        {
            case RootFileSystemKind.Image:
                await EnsurePulledAsync(root.Source!, spec.PullPolicy ?? pullPolicy, spec.PullProgress, cancellationToken).ConfigureAwait(false);
                return root.Source!;
            case RootFileSystemKind.ImageArchive:
                return await EnsureLoadedAsync(root.Source!, cancellationToken).ConfigureAwait(false);
            case RootFileSystemKind.Directory:
                return await EnsureImportedAsync(root.Source!, cancellationToken).ConfigureAwait(false);
            default:
                throw new BackendUnavailableException(
                    "The Docker backend cannot run a container on the host's root filesystem (FromHost): a Docker daemon only runs images. " +
                    "Use FromImage(\"...\") or FromDirectory(path) with the Docker backend, or the built-in engine (ISOTEST_BACKEND=engine) for FromHost.");
        }
    }

    /// <summary>The tag a directory is imported under: changes when the path or the directory's mtime changes.</summary>
    internal static string DirectoryImageReference(string directory)
    {
        var full = Path.GetFullPath(directory).TrimEnd('/');
        var mtime = Directory.GetLastWriteTimeUtc(full).Ticks.ToString(CultureInfo.InvariantCulture);
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(full + "\n" + mtime)))[..16];
        return $"{DirectoryRepository}:{hash}";
    }

    /// <summary>
    /// What the image adds to a container (its exposed TCP ports, published like the spec's; its labels,
    /// under the spec's) and its healthcheck, from the daemon's inspect of <paramref name="image"/>.
    /// </summary>
    internal async Task<(ContainerSpec Spec, ContainerHealthcheck? Healthcheck)> ApplyDefaultsAsync(ContainerSpec spec, string image, CancellationToken cancellationToken)
    {
        var config = (await client.Images.InspectImageAsync(image, cancellationToken).ConfigureAwait(false)).Config;
        if (config is null)
        {
            return (spec, null);
        }

        var exposed = (config.ExposedPorts?.Keys ?? Enumerable.Empty<string>())
            .Select(k => k.Split('/', 2))
            .Where(p => p.Length == 1 || p[1].Equals("tcp", StringComparison.OrdinalIgnoreCase))
            .Select(p => int.TryParse(p[0], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and < 65536 ? n : 0)
            .Where(n => n > 0 && !spec.Ports.Contains(n)).Distinct().Order().ToList();
        var labels = new Dictionary<string, string>(config.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        foreach (var (key, value) in spec.Labels)
        {
            labels[key] = value;
        }

        var h = config.Healthcheck;
        ContainerHealthcheck? healthcheck;
        try
        {
            healthcheck = h is null ? null : ContainerHealthcheck.FromImageConfig(h.Test?.ToList(), (h.Interval?.Ticks ?? 0) * 100, (h.Timeout?.Ticks ?? 0) * 100, (h.StartPeriod?.Ticks ?? 0) * 100, (int)Math.Min(h.Retries ?? 0, int.MaxValue));
        }
        catch (FormatException e)
        {
            throw new ImagePullException(image, e.Message + ": the image config is malformed.", e);
        }

        // A spec the daemon's own merge agrees with: IContainer.Spec says what the container got.
        var merged = exposed.Count == 0 && (config.Labels is null || config.Labels.Count == 0)
            ? spec
            : spec with { Labels = labels, Ports = [.. spec.Ports, .. exposed] };
        return (merged, healthcheck);
    }

    /// <summary>Loads a docker save archive (or an OCI layout tar, on daemons that take them) once per file and change.</summary>
    private async Task<string> EnsureLoadedAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            throw new ImagePullException(path, Directory.Exists(path)
                ? "the Docker backend loads image archives as files (docker load): tar the OCI layout (tar -C DIR -cf FILE .) or use docker save -o FILE."
                : "the image archive does not exist: give the path of a docker save archive.");
        }

        var key = (Path.GetFullPath(path), new FileInfo(path).Length, File.GetLastWriteTimeUtc(path));
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_loaded.TryGetValue(key, out var known) && await ExistsAsync(known, cancellationToken).ConfigureAwait(false))
            {
                return known;
            }

            var loaded = new List<string>();
            var errors = new List<string>();
            var stream = File.OpenRead(path);
            await using (stream.ConfigureAwait(false))
            {
                try
                {
                    await client.Images.LoadImageAsync(new ImageLoadParameters { Quiet = true }, stream, new LoadProgress(loaded, errors), cancellationToken).ConfigureAwait(false);
                }
                catch (DockerApiException e)
                {
                    throw new ImagePullException(path, $"the daemon refused to load the archive: {DockerErrors.Message(e)}", e);
                }
            }

            if (errors.Count > 0 || loaded.Count == 0)
            {
                throw new ImagePullException(path, errors.Count > 0 ? $"docker load failed: {string.Join("; ", errors)}" : "docker load reported no image: is it a docker save archive?");
            }

            if (loaded.Distinct().Count() > 1)
            {
                throw new ImagePullException(path, $"the archive holds {loaded.Distinct().Count()} images ({string.Join(", ", loaded.Distinct())}): FromImageArchive runs one; docker load it and use FromImage(name).");
            }

            _loaded[key] = loaded[0];
            return loaded[0];
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task EnsurePulledAsync(string reference, ImagePullPolicy pullPolicy, IProgress<ImagePullProgress>? pullProgress, CancellationToken cancellationToken)
    {
        if (pullPolicy != ImagePullPolicy.Always && await ExistsAsync(reference, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        if (pullPolicy == ImagePullPolicy.Never)
        {
            throw new ImagePullException(reference,
                "the daemon does not have this image and the pull policy is Never: pull or build it first (docker pull / docker import), or use ImagePullPolicy.Missing.");
        }

        var (name, tag) = SplitReference(reference);
        var errors = new List<string>();
        var progress = new Progress(errors, ImageReference.Parse(reference).ToString(), pullProgress);
        try
        {
            await client.Images.CreateImageAsync(new ImagesCreateParameters { FromImage = name, Tag = tag }, null, progress, cancellationToken)
                .ConfigureAwait(false);
        }
        catch (DockerApiException e)
        {
            throw new ImagePullException(reference, $"the registry refused the pull: {DockerErrors.Message(e)}", e);
        }

        if (errors.Count > 0)
        {
            throw new ImagePullException(reference, $"pull failed: {string.Join("; ", errors)}");
        }

        if (!await ExistsAsync(reference, cancellationToken).ConfigureAwait(false))
        {
            throw new ImagePullException(reference, "the pull finished but the daemon still has no such image: check the reference (name, tag, platform).");
        }
    }

    private async Task<string> EnsureImportedAsync(string directory, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(directory))
        {
            throw new ImagePullException(directory, "the root filesystem directory does not exist: check the path given to FromDirectory.");
        }

        var reference = DirectoryImageReference(directory);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (await ExistsAsync(reference, cancellationToken).ConfigureAwait(false))
            {
                return reference;
            }

            var archive = DockerArchive.Create();
        await using var archiveScope = archive.ConfigureAwait(false);
            await archive.AddDirectoryAsync(directory, "/", cancellationToken).ConfigureAwait(false);
            var errors = new List<string>();
            var (name, tag) = SplitReference(reference);
            try
            {
                using var stream = await archive.OpenReadAsync().ConfigureAwait(false);
                await client.Images.CreateImageAsync(
                    new ImagesCreateParameters
                    {
                        FromSrc = "-",
                        Repo = name,
                        Tag = tag,
                        Changes = [$"LABEL {DockerOwner.MarkerLabel}=1"],
                    },
                    stream,
                    null,
                    new Progress(errors),
                    cancellationToken).ConfigureAwait(false);
            }
            catch (DockerApiException e)
            {
                throw new ImagePullException(directory, $"the daemon refused to import the directory: {DockerErrors.Message(e)}", e);
            }

            if (errors.Count > 0 || !await ExistsAsync(reference, cancellationToken).ConfigureAwait(false))
            {
                throw new ImagePullException(directory, $"import failed: {(errors.Count > 0 ? string.Join("; ", errors) : "the daemon has no image afterwards")}.");
            }

            return reference;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<bool> ExistsAsync(string reference, CancellationToken cancellationToken)
    {
        try
        {
            await client.Images.InspectImageAsync(reference, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (DockerImageNotFoundException)
        {
            return false;
        }
        catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>"reg:5000/a/b:1" → ("reg:5000/a/b", "1"); "a@sha256:…" → ("docker.io/library/a", "sha256:…"); no tag → "latest" (else the API pulls every tag).</summary>
    internal static (string Name, string Tag) SplitReference(string reference)
    {
        var parsed = ImageReference.Parse(reference);
        return (parsed.Name, parsed.ManifestReference);
    }

    /// <summary>
    /// The pull/import stream reports failures as messages, not as HTTP errors; a pull's per-layer lines
    /// ("Downloading", "Pull complete", ...) become <see cref="ImagePullProgress"/> as the engine reports them.
    /// </summary>
    private sealed class Progress(List<string> errors, string? image = null, IProgress<ImagePullProgress>? progress = null) : IProgress<JSONMessage>
    {
        public void Report(JSONMessage value)
        {
            var error = value.Error?.Message;
            if (!string.IsNullOrEmpty(error))
            {
                lock (errors)
                {
                    errors.Add(error);
                }

                return;
            }

            if (progress is null || image is null)
            {
                return;
            }

            var status = value.Status ?? "";
            if (status.StartsWith("Digest: ", StringComparison.Ordinal))
            {
                progress.Report(new ImagePullProgress(image, status["Digest: ".Length..].Trim(), ImagePullPhase.Resolved));
                return;
            }

            if (string.IsNullOrEmpty(value.ID))
            {
                return;
            }

            ImagePullPhase? phase = status switch
            {
                "Already exists" => ImagePullPhase.AlreadyExists,
                "Downloading" => ImagePullPhase.Downloading,
                "Download complete" or "Verifying Checksum" => ImagePullPhase.Downloaded,
                "Extracting" => ImagePullPhase.Extracting,
                "Pull complete" => ImagePullPhase.Complete,
                _ => null,
            };
            if (phase is { } p)
            {
                var total = value.Progress?.Total;
                progress.Report(new ImagePullProgress(image, value.ID, p, value.Progress?.Current ?? 0, total is > 0 ? total : null));
            }
        }
    }

    /// <summary>docker load's stream: "Loaded image: NAME:TAG" (or "Loaded image ID: sha256:...") per image, and errors.</summary>
    private sealed class LoadProgress(List<string> loaded, List<string> errors) : IProgress<JSONMessage>
    {
        public void Report(JSONMessage value)
        {
            if (value.Error?.Message is { Length: > 0 } error)
            {
                errors.Add(error);
                return;
            }

            var text = (value.Stream ?? value.Status ?? "").Trim();
            foreach (var prefix in (string[])["Loaded image ID: ", "Loaded image: "])
            {
                if (text.StartsWith(prefix, StringComparison.Ordinal))
                {
                    loaded.Add(text[prefix.Length..].Trim());
                    return;
                }
            }
        }
    }
}

/// <summary>Readable text from the daemon's error bodies (<c>{"message":"..."}</c>).</summary>
internal static class DockerErrors
{
    internal static string Message(DockerApiException e)
    {
        var body = e.ResponseBody;
        if (string.IsNullOrWhiteSpace(body))
        {
            return $"HTTP {(int)e.StatusCode}";
        }

        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(body);
            if (json.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && json.RootElement.TryGetProperty("message", out var message))
            {
                return message.GetString() ?? body.Trim();
            }
        }
        catch (System.Text.Json.JsonException)
        {
        }

        return body.Trim();
    }

    internal static bool IsNotFound(Exception e) =>
        e is DockerContainerNotFoundException || (e is DockerApiException api && api.StatusCode == System.Net.HttpStatusCode.NotFound);
}
