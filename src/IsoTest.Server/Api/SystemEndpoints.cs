using System.Runtime.InteropServices;
using IsoTest.Server.Containers;
using IsoTest.Server.Http;
using IsoTest.Server.Images;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace IsoTest.Server.Api;

/// <summary>/_ping, /version, /info, /events: what clients ask before anything else.</summary>
internal static class SystemEndpoints
{
    public static void Map(IEndpointRouteBuilder app, ContainerTable table, ImageCatalog images, Volumes.VolumeTable volumes, ServerEvents events)
    {
        // Clients negotiate the API version from these headers; dockerd answers HEAD and GET alike.
        app.MapMethods("/_ping", ["GET", "HEAD"], (HttpContext context) =>
        {
            context.Response.Headers.CacheControl = "no-cache, no-store, must-revalidate";
            context.Response.Headers.Pragma = "no-cache";
            return HttpMethods.IsHead(context.Request.Method) ? Results.Ok() : Results.Text("OK", "text/plain; charset=utf-8");
        });

        app.MapGet("/version", () => Results.Json(new Dictionary<string, object?>
        {
            ["Platform"] = new Dictionary<string, string> { ["Name"] = "IsoTest Engine" },
            ["Components"] = new[]
            {
                new Dictionary<string, object?> { ["Name"] = "Engine", ["Version"] = ServerInfo.Version, ["Details"] = new Dictionary<string, string> { ["ApiVersion"] = ApiVersioning.Format(ApiVersioning.Current), ["MinAPIVersion"] = ApiVersioning.Format(ApiVersioning.Minimum), ["Os"] = "linux", ["Arch"] = ServerInfo.GoArch } },
            },
            ["Version"] = ServerInfo.Version,
            ["ApiVersion"] = ApiVersioning.Format(ApiVersioning.Current),
            ["MinAPIVersion"] = ApiVersioning.Format(ApiVersioning.Minimum),
            ["GitCommit"] = "",
            ["GoVersion"] = "",
            ["Os"] = "linux",
            ["Arch"] = ServerInfo.GoArch,
            ["KernelVersion"] = ServerInfo.KernelVersion,
            ["BuildTime"] = "",
        }, ServerJson.Options));

        // What docker system df reads: images (sizes in the store), containers (no writable layer on disk: it lives in
        // memory, in each container's own tmpfs), volumes; no build cache.
        app.MapGet("/system/df", () =>
        {
            var list = images.List().ToList();
            return Results.Json(new Dictionary<string, object?>
            {
                ["LayersSize"] = list.Sum(i => i.Size),
                ["Images"] = list.Select(i => ImageEndpoints.Summary(i, table)).ToList(),
                ["Containers"] = table.All.Select(c =>
                {
                    var summary = ContainerViews.Summary(c);
                    summary["SizeRw"] = 0L;
                    summary["SizeRootFs"] = c.Image.Size;
                    return summary;
                }).ToList(),
                ["Volumes"] = volumes.All.Select(v => VolumeEndpoints.View(v, table)).ToList(),
                ["BuildCache"] = Array.Empty<object>(),
            }, ServerJson.Options);
        });

        app.MapGet("/info", () =>
        {
            var all = table.All.ToList();
            return Results.Json(new Dictionary<string, object?>
            {
                ["ID"] = ServerInfo.Id,
                ["Containers"] = all.Count,
                ["ContainersRunning"] = all.Count(c => c.Running),
                ["ContainersPaused"] = 0,
                ["ContainersStopped"] = all.Count(c => !c.Running),
                ["Images"] = images.List().Count,
                ["Driver"] = "overlay2",
                ["DockerRootDir"] = ServerInfo.DataRoot,
                ["MemTotal"] = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
                ["NCPU"] = Environment.ProcessorCount,
                ["OperatingSystem"] = RuntimeInformation.OSDescription,
                ["OSType"] = "linux",
                ["Architecture"] = RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "aarch64" : "x86_64",
                ["KernelVersion"] = ServerInfo.KernelVersion,
                ["Name"] = Environment.MachineName,
                ["ServerVersion"] = ServerInfo.Version,
                ["CgroupDriver"] = "cgroupfs",
                ["CgroupVersion"] = File.Exists("/sys/fs/cgroup/cgroup.controllers") ? "2" : "1",
                ["Labels"] = Array.Empty<string>(),
                ["SecurityOptions"] = new[] { "name=seccomp,profile=builtin" },
                ["Runtimes"] = new Dictionary<string, object> { ["isotest"] = new Dictionary<string, string> { ["path"] = "isotest-init" } },
                ["DefaultRuntime"] = "isotest",
                ["Swarm"] = new Dictionary<string, string> { ["LocalNodeState"] = "inactive" },
                ["Debug"] = false,
                ["ExperimentalBuild"] = false,
            }, ServerJson.Options);
        });

        app.MapGet("/events", async (HttpContext context, string? filters) =>
        {
            context.Response.ContentType = "application/json";
            await context.Response.StartAsync(context.RequestAborted).ConfigureAwait(false);
            await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
            var filter = EventFilter.Parse(filters);
            await foreach (var e in events.ListenAsync(context.RequestAborted).ConfigureAwait(false))
            {
                if (filter.Matches(e))
                {
                    await context.Response.WriteAsync(System.Text.Json.JsonSerializer.Serialize(e.ToJson(), ServerJson.Options) + "\n", context.RequestAborted).ConfigureAwait(false);
                    await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
                }
            }
        });
    }
}

/// <summary>The <c>filters</c> of GET /events: type, event, container (id or name), label.</summary>
internal sealed class EventFilter(Dictionary<string, List<string>> filters)
{
    public static EventFilter Parse(string? json)
    {
        var filters = new Dictionary<string, List<string>>();
        if (!string.IsNullOrWhiteSpace(json))
        {
            using var document = System.Text.Json.JsonDocument.Parse(json);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                filters[property.Name] = property.Value.ValueKind == System.Text.Json.JsonValueKind.Array
                    ? property.Value.EnumerateArray().Select(v => v.GetString() ?? "").ToList()
                    : property.Value.EnumerateObject().Select(p => p.Name).ToList();
            }
        }

        return new(filters);
    }

    public bool Matches(DockerEvent e) => filters.All(f => f.Key switch
    {
        "type" => f.Value.Contains(e.Type),
        "event" => f.Value.Contains(e.Action),
        "container" => f.Value.Any(v => e.Id.StartsWith(v, StringComparison.Ordinal) || e.Attributes.GetValueOrDefault("name") == v),
        "label" => f.Value.All(l => l.Split('=', 2) is var kv && e.Attributes.TryGetValue(kv[0], out var v) && (kv.Length == 1 || v == kv[1])),
        _ => true,
    });
}
