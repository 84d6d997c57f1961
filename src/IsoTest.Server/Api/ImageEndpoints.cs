using IsoTest.Server.Http;
using IsoTest.Server.Images;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace IsoTest.Server.Api;

/// <summary>/images/...: list, inspect and pull of what <see cref="ImageResolver"/> knows.</summary>
internal static class ImageEndpoints
{
    public static void Map(IEndpointRouteBuilder app, ImageResolver images)
    {
        app.MapGet("/images/json", () => Results.Json(images.List().Select(Summary).ToList(), ServerJson.Options));

        app.MapGet("/images/{*name}", (string name) =>
        {
            // The catch-all keeps slashes in the name (isotest/host/json); only .../json is an inspect.
            if (!name.EndsWith("/json", StringComparison.Ordinal))
            {
                throw DockerApiException.NoSuchImage(name);
            }

            var image = images.Resolve(name[..^"/json".Length]);
            return Results.Json(Inspect(image), ServerJson.Options);
        });

        // A pull streams JSON progress lines; what the store already has ends with dockerd's closing Status line.
        app.MapPost("/images/create", async (HttpContext context, string? fromImage, string? tag) =>
        {
            var reference = string.IsNullOrEmpty(tag) ? fromImage : $"{fromImage}:{tag}";
            var image = images.TryResolve(reference ?? "")
                ?? throw new DockerApiException(StatusCodes.Status404NotFound, $"pull access denied for {fromImage}, repository does not exist: IsoTest's server has no image store yet; use {ImageResolver.HostImage}");
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync($$"""{"status":"Pulling from {{fromImage}}","id":"{{tag ?? "latest"}}"}""" + "\n", context.RequestAborted).ConfigureAwait(false);
            await context.Response.WriteAsync($$"""{"status":"Digest: {{image.Id}}"}""" + "\n", context.RequestAborted).ConfigureAwait(false);
            await context.Response.WriteAsync($$"""{"status":"Status: Image is up to date for {{image.Name}}"}""" + "\n", context.RequestAborted).ConfigureAwait(false);
        });
    }

    private static Dictionary<string, object?> Summary(ResolvedImage image) => new()
    {
        ["Id"] = image.Id,
        ["ParentId"] = "",
        ["RepoTags"] = new[] { image.Name },
        ["RepoDigests"] = Array.Empty<string>(),
        ["Created"] = image.Created.ToUnixTimeSeconds(),
        ["Size"] = 0,
        ["SharedSize"] = -1,
        ["VirtualSize"] = 0,
        ["Labels"] = new Dictionary<string, string>(),
        ["Containers"] = -1,
    };

    private static Dictionary<string, object?> Inspect(ResolvedImage image) => new()
    {
        ["Id"] = image.Id,
        ["RepoTags"] = new[] { image.Name },
        ["RepoDigests"] = Array.Empty<string>(),
        ["Created"] = Containers.ContainerViews.Time(image.Created),
        ["Architecture"] = ServerInfo.GoArch,
        ["Os"] = "linux",
        ["Size"] = 0,
        ["Config"] = new Dictionary<string, object?> { ["Env"] = Array.Empty<string>(), ["Cmd"] = null, ["Entrypoint"] = null, ["Labels"] = null, ["ExposedPorts"] = null, ["WorkingDir"] = "" },
        ["RootFS"] = new Dictionary<string, object?> { ["Type"] = "layers", ["Layers"] = Array.Empty<string>() },
    };
}
