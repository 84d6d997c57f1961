using System.Text.Json;
using System.Threading.Channels;
using IsoTest.Engine.Images;
using IsoTest.Server.Containers;
using IsoTest.Server.Http;
using IsoTest.Server.Images;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace IsoTest.Server.Api;

/// <summary>
/// /images/...: list, inspect, pull (<c>fromImage</c>), import (<c>fromSrc</c>), load, tag, remove and
/// prune, on the engine's image store (the one its containers run from) plus the server's own images.
/// </summary>
internal static class ImageEndpoints
{
    public static void Map(IEndpointRouteBuilder app, ImageCatalog images, ContainerTable containers)
    {
        // One row per image id with all its tags; dangling (untagged) images are not kept by the store.
        app.MapGet("/images/json", () => Results.Json(images.List().Select(i => Summary(i, containers)).ToList(), ServerJson.Options));

        // The catch-all keeps slashes in names (isotest/host/json, a/b:1/tag); the last segment is the action.
        app.MapGet("/images/{*name}", (string name) =>
        {
            if (!name.EndsWith("/json", StringComparison.Ordinal))
            {
                throw DockerApiException.NoSuchImage(name);
            }

            return Results.Json(Inspect(images.Resolve(name[..^"/json".Length])), ServerJson.Options);
        });

        app.MapPost("/images/create", (HttpContext context, string? fromImage, string? fromSrc, string? repo, string? tag, [Microsoft.AspNetCore.Mvc.FromQuery] string[]? changes) =>
            fromSrc is not null ? ImportAsync(context, images, fromSrc, repo, tag, changes ?? [])
            : !string.IsNullOrEmpty(fromImage) ? PullAsync(context, images, fromImage, tag)
            : throw DockerApiException.BadRequest("give fromImage (docker pull) or fromSrc (docker import)"));

        app.MapPost("/images/load", async (HttpContext context) =>
        {
            var tmp = images.Store.Store.NewTempPath("load");
            try
            {
                var file = File.Create(tmp);
                await using (file.ConfigureAwait(false))
                {
                    await context.Request.Body.CopyToAsync(file, context.RequestAborted).ConfigureAwait(false);
                }

                var loaded = await images.Store.ImportAsync(tmp, context.RequestAborted).ConfigureAwait(false);
                context.Response.ContentType = "application/json";
                foreach (var image in loaded)
                {
                    await WriteLineAsync(context, new Dictionary<string, object?> { ["stream"] = $"Loaded image: {image.Reference.ToFamiliarString()}\n" }).ConfigureAwait(false);
                }
            }
            finally
            {
                File.Delete(tmp);
            }
        });

        app.MapPost("/images/prune", () =>
        {
            var pruned = images.Store.Prune();
            return Results.Json(new Dictionary<string, object?> { ["ImagesDeleted"] = null, ["SpaceReclaimed"] = pruned.BlobBytes }, ServerJson.Options);
        });

        app.MapPost("/images/{*name}", (string name, string? repo, string? tag) =>
        {
            if (!name.EndsWith("/tag", StringComparison.Ordinal))
            {
                throw DockerApiException.NoSuchImage(name);
            }

            var source = images.Resolve(name[..^"/tag".Length]);
            if (string.IsNullOrEmpty(repo))
            {
                throw DockerApiException.BadRequest("repository name must have at least one component: give repo (and tag)");
            }

            var target = CheckReference(string.IsNullOrEmpty(tag) ? repo : $"{repo}:{tag}");

            if (source.Stored is null || !images.Store.Tag($"{source.Stored.Reference.Name}@{source.Stored.ManifestDigest}", target))
            {
                throw DockerApiException.BadRequest($"{source.Name} is provided by the server itself and cannot be tagged; tag an image from the store (pulled, imported or loaded)");
            }

            return Results.StatusCode(StatusCodes.Status201Created);
        });

        app.MapDelete("/images/{*name}", (string name, string? force) =>
        {
            var image = images.Resolve(name);
            if (image.Stored is null)
            {
                throw DockerApiException.Conflict($"conflict: unable to remove {image.Name}: it is provided by the server itself");
            }

            // dockerd: a name is untagged; an id removes every tag. A container using the image keeps it unless forced.
            var byId = !ImageReference.TryParse(name, out _) || images.Store.Find(name) is null;
            var user = containers.All.FirstOrDefault(c => c.Image.Id == image.Id);
            if (user is not null && !ContainerEndpoints.IsTrue(force) && (byId || image.Tags.Count == 1))
            {
                throw DockerApiException.Conflict($"conflict: unable to remove repository reference \"{name}\" (must force) - container {user.Id[..12]} is using its referenced image {image.Id["sha256:".Length..][..12]}");
            }

            var untagged = byId ? image.Tags : [ImageReference.Parse(name).ToFamiliarString()];
            foreach (var tag in untagged)
            {
                images.Store.Remove(tag);
            }

            var result = untagged.Select(t => new Dictionary<string, string> { ["Untagged"] = t }).ToList();
            if (images.TryResolve(image.Id) is null)
            {
                result.Add(new Dictionary<string, string> { ["Deleted"] = image.Id });
            }

            return Results.Json(result, ServerJson.Options);
        });
    }

    /// <summary>docker pull: progress as dockerd's JSON lines, one per layer event; a failure before the first line is a plain error response.</summary>
    private static async Task PullAsync(HttpContext context, ImageCatalog images, string fromImage, string? tag)
    {
        var reference = string.IsNullOrEmpty(tag) || fromImage.Contains('@', StringComparison.Ordinal) ? fromImage
            : tag.StartsWith("sha256:", StringComparison.Ordinal) ? $"{fromImage}@{tag}" : $"{fromImage}:{tag}";
        if (ImageCatalog.IsBuiltin(reference))
        {
            var builtin = images.Resolve(reference);
            context.Response.ContentType = "application/json";
            await WriteLineAsync(context, new() { ["status"] = $"Pulling from {fromImage}", ["id"] = tag ?? "latest" }).ConfigureAwait(false);
            await WriteLineAsync(context, new() { ["status"] = $"Digest: {builtin.Id}" }).ConfigureAwait(false);
            await WriteLineAsync(context, new() { ["status"] = $"Status: Image is up to date for {builtin.Name}" }).ConfigureAwait(false);
            return;
        }

        var had = images.Store.Find(reference)?.ManifestDigest;
        var lines = Channel.CreateUnbounded<Dictionary<string, object?>>();
        var pull = Task.Run(async () =>
        {
            try
            {
                return await images.Store.PullAsync(reference, new Progress(lines.Writer), context.RequestAborted).ConfigureAwait(false);
            }
            finally
            {
                lines.Writer.Complete();
            }
        });

        // The first line decides: an error before it (unknown image, registry down) is a 404 with the message.
        var first = await lines.Reader.WaitToReadAsync(context.RequestAborted).ConfigureAwait(false);
        if (!first)
        {
            await pull.ConfigureAwait(false);   // throws the pull's failure, if any
        }

        context.Response.ContentType = "application/json";
        await WriteLineAsync(context, new() { ["status"] = $"Pulling from {ImageReference.Parse(reference).FamiliarName}", ["id"] = tag ?? "latest" }).ConfigureAwait(false);
        await foreach (var line in lines.Reader.ReadAllAsync(context.RequestAborted).ConfigureAwait(false))
        {
            await WriteLineAsync(context, line).ConfigureAwait(false);
        }

        try
        {
            var image = await pull.ConfigureAwait(false);
            var name = image.Reference.ToFamiliarString();
            await WriteLineAsync(context, new() { ["status"] = $"Digest: {image.ManifestDigest}" }).ConfigureAwait(false);
            await WriteLineAsync(context, new() { ["status"] = had == image.ManifestDigest ? $"Status: Image is up to date for {name}" : $"Status: Downloaded newer image for {name}" }).ConfigureAwait(false);
        }
        catch (ImagePullException e)
        {
            await WriteLineAsync(context, new() { ["errorDetail"] = new Dictionary<string, string> { ["message"] = e.Message }, ["error"] = e.Message }).ConfigureAwait(false);
        }
    }

    /// <summary>docker import: the body is a root filesystem tar; <c>changes</c> are Dockerfile lines (CMD, ENV, LABEL, ...).</summary>
    private static async Task ImportAsync(HttpContext context, ImageCatalog images, string fromSrc, string? repo, string? tag, string[] changes)
    {
        if (fromSrc != "-")
        {
            throw DockerApiException.BadRequest($"fromSrc={fromSrc}: this server imports only from the request body (fromSrc=-); download the tar and send it");
        }

        var defaults = ImportChanges.Parse(changes);
        // Untagged imports get a name of their own: the store keeps only tagged images.
        var name = string.IsNullOrEmpty(repo) ? $"isotest.local/import:{Guid.NewGuid():N}"[..34]
            : CheckReference(string.IsNullOrEmpty(tag) ? repo : $"{repo}:{tag}");

        var image = await images.Store.ImportRootfsAsync(context.Request.Body, name, defaults, context.RequestAborted).ConfigureAwait(false);
        context.Response.ContentType = "application/json";
        await WriteLineAsync(context, new() { ["status"] = image.ConfigDigest }).ConfigureAwait(false);
    }

    private static string CheckReference(string reference)
    {
        try
        {
            return ImageReference.Parse(reference).ToString();
        }
        catch (ArgumentException e)
        {
            throw DockerApiException.BadRequest($"invalid reference format: {e.Message}");
        }
    }

    private static async Task WriteLineAsync(HttpContext context, Dictionary<string, object?> line)
    {
        await context.Response.WriteAsync(JsonSerializer.Serialize(line, ServerJson.Options) + "\n", context.RequestAborted).ConfigureAwait(false);
        await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    internal static Dictionary<string, object?> Summary(ResolvedImage image, ContainerTable containers) => new()
    {
        ["Id"] = image.Id,
        ["ParentId"] = "",
        ["RepoTags"] = image.Tags,
        ["RepoDigests"] = RepoDigests(image),
        ["Created"] = image.Created.ToUnixTimeSeconds(),
        ["Size"] = image.Size,
        ["SharedSize"] = -1,
        ["VirtualSize"] = image.Size,
        ["Labels"] = image.Defaults?.Labels ?? new Dictionary<string, string>(),
        ["Containers"] = containers.All.Count(c => c.Image.Id == image.Id),
    };

    private static string[] RepoDigests(ResolvedImage image) =>
        image.Stored is { } s ? [$"{s.Reference.FamiliarName}@{s.ManifestDigest}"] : [];

    private static Dictionary<string, object?> Inspect(ResolvedImage image)
    {
        var d = image.Defaults;
        return new()
        {
            ["Id"] = image.Id,
            ["RepoTags"] = image.Tags,
            ["RepoDigests"] = RepoDigests(image),
            ["Parent"] = "",
            ["Created"] = ContainerViews.Time(image.Created),
            ["Architecture"] = image.Stored?.Config.Architecture ?? ServerInfo.GoArch,
            ["Os"] = image.Stored?.Config.Os ?? "linux",
            ["Size"] = image.Size,
            ["VirtualSize"] = image.Size,
            ["Config"] = new Dictionary<string, object?>
            {
                ["User"] = d?.User ?? "",
                ["Env"] = d?.Env ?? [],
                ["Cmd"] = d?.Cmd,
                ["Entrypoint"] = d?.Entrypoint,
                ["WorkingDir"] = d?.WorkingDir ?? "",
                ["Labels"] = d?.Labels,
                ["ExposedPorts"] = d?.ExposedPorts?.ToDictionary(p => p.Key, _ => new Dictionary<string, object>()),
                ["StopSignal"] = d?.StopSignal,
                ["Healthcheck"] = d?.Healthcheck is { } h
                    ? new Dictionary<string, object?> { ["Test"] = h.Test, ["Interval"] = h.Interval, ["Timeout"] = h.Timeout, ["StartPeriod"] = h.StartPeriod, ["Retries"] = h.Retries }
                    : null,
            },
            ["RootFS"] = new Dictionary<string, object?> { ["Type"] = "layers", ["Layers"] = image.Layers },
        };
    }

    /// <summary>Pull progress in dockerd's words, keyed by the short layer id the docker CLI shows.</summary>
    private sealed class Progress(ChannelWriter<Dictionary<string, object?>> lines) : IProgress<ImagePullProgress>
    {
        public void Report(ImagePullProgress value)
        {
            if (value.Phase == ImagePullPhase.Resolved)
            {
                return;
            }

            var id = value.Layer.StartsWith("sha256:", StringComparison.Ordinal) ? value.Layer["sha256:".Length..][..12] : value.Layer;
            var status = value.Phase switch
            {
                ImagePullPhase.AlreadyExists => "Already exists",
                ImagePullPhase.Downloading => "Downloading",
                ImagePullPhase.Downloaded => "Download complete",
                ImagePullPhase.Extracting => "Extracting",
                _ => "Pull complete",
            };
            var line = new Dictionary<string, object?> { ["status"] = status, ["id"] = id };
            if (value.Phase == ImagePullPhase.Downloading)
            {
                line["progressDetail"] = new Dictionary<string, long> { ["current"] = value.Current, ["total"] = value.Total ?? 0 };
            }

            lines.TryWrite(line);
        }
    }
}
