// CloudFront Function (runtime cloudfront-js-2.0, viewer-request) of the LiteLLM console distribution:
// only the admin UI and the management endpoints it calls reach the gateway's internal ALB; the model
// API (/chat/completions, /v1/*, /embeddings, /responses, pass-through routes, MCP, ...) is refused here
// with 403, so it stays private to the VPC. Fail closed: anything not listed below is refused.
//
// Event and response shape:
// https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/functions-event-structure.html
// (request.uri is the path without the query string; the query string is request.querystring).
// The lists come from LiteLLM 1.102.4's routes and the requests its UI makes (docs/platform-console.md);
// tests/stacks/test_llm_gateway_console.py runs this file in node with that event shape.

// The UI shell and what it loads before and during login (no key needed by LiteLLM for these).
var PUBLIC_EXACT = {
    '/v2/login': true,
    '/.well-known/litellm-ui-config': true,
    '/litellm/.well-known/litellm-ui-config': true,
    '/get_image': true,
    '/get_logo_url': true,
    '/get_favicon': true,
    '/get/ui_theme_settings': true
};
var PUBLIC_PREFIXES = ['/ui', '/_next', '/litellm-asset-prefix/_next'];

// Management endpoints the UI calls with its session key (LiteLLM authenticates every one of them).
var MANAGEMENT_EXACT = {
    '/get/ui_settings': true,
    '/get/user_banner': true,
    '/sso/get/ui_settings': true,
    '/health/license': true,
    '/health/readiness/details': true,
    '/api/plugins': true,
    '/policies/list': true,
    '/prompts/list': true,
    '/project/list': true,
    '/guardrails/list': true,
    '/v2/guardrails/list': true
};
var MANAGEMENT_PREFIXES = [
    '/key', '/team', '/user', '/model', '/model_group', '/global', '/spend', '/tag', '/budget',
    '/organization', '/customer', '/v2/team', '/v2/user', '/v2/model', '/v2/organization'
];
// The model list the UI's forms read: listing only, never an inference, and only GET/HEAD.
var READ_ONLY_EXACT = { '/models': true };
var READ_METHODS = { 'GET': true, 'HEAD': true };

// Only plain path characters: no percent-encoding (an encoded "/" or "." could be decoded behind the
// edge into another route), no backslash, no ";" or ":" (e.g. /models/x:generateContent).
var SAFE_PATH = /^\/[A-Za-z0-9._~!()\/-]*$/;

function refuse() {
    return {
        statusCode: 403,
        statusDescription: 'Forbidden',
        headers: {
            'content-type': { value: 'text/plain; charset=utf-8' },
            'cache-control': { value: 'no-store' }
        },
        body: 'Not served by the console: only the LiteLLM admin UI is public; the model API is private to the VPC.\n'
    };
}

function isCanonical(uri) {
    if (!SAFE_PATH.test(uri)) {
        return false;
    }
    var segments = uri.split('/');
    for (var i = 1; i < segments.length; i++) {
        var segment = segments[i];
        // "" only as the last segment (a trailing slash); never "//", "." or ".."
        if ((segment === '' && i !== segments.length - 1) || segment === '.' || segment === '..') {
            return false;
        }
        // MCP endpoints match any first segment (/{server}/mcp): never through the console
        if (segment === 'mcp') {
            return false;
        }
    }
    return true;
}

function underPrefix(uri, prefixes) {
    for (var i = 0; i < prefixes.length; i++) {
        var prefix = prefixes[i];
        if (uri === prefix || uri.indexOf(prefix + '/') === 0) {
            return true;
        }
    }
    return false;
}

function isAllowed(method, uri) {
    if (PUBLIC_EXACT[uri] === true || MANAGEMENT_EXACT[uri] === true) {
        return true;
    }
    if (READ_ONLY_EXACT[uri] === true) {
        return READ_METHODS[method] === true;
    }
    return underPrefix(uri, PUBLIC_PREFIXES) || underPrefix(uri, MANAGEMENT_PREFIXES);
}

function handler(event) {
    var request = event.request;
    var uri = request.uri;
    if (typeof uri !== 'string' || !isCanonical(uri)) {
        return refuse();
    }
    if (uri === '/') {
        // The root serves LiteLLM's API reference: send people to the console instead.
        return {
            statusCode: 302,
            statusDescription: 'Found',
            headers: { 'location': { value: '/ui/' }, 'cache-control': { value: 'no-store' } }
        };
    }
    return isAllowed(request.method, uri) ? request : refuse();
}
