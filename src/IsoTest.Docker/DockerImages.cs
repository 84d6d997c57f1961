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

    internal async Task<string> EnsureAsync(RootFileSystem root, CancellationToken cancellationToken)
    {
        switch (root.Kind)
        {
            case RootFileSystemKind.Image:
                await EnsurePulledAsync(root.Source!, cancellationToken).ConfigureAwait(false);
                return root.Source!;
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

    private async Task EnsurePulledAsync(string reference, CancellationToken cancellationToken)
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
        var progress = new Progress(errors);
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

    /// <summary>The pull/import stream reports failures as messages, not as HTTP errors.</summary>
    private sealed class Progress(List<string> errors) : IProgress<JSONMessage>
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
